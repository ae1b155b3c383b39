"""Calibration of predicted probabilities: reliability-diagram data, calibration slope and intercept,
expected calibration error (ECE), Brier score and log-loss.

Slope: the coefficient of logit(p) in a logistic regression of the reference on logit(p) (1 when the
spread of the probabilities is right, < 1 when they are too extreme). Intercept: calibration-in-the-large,
``a`` in logit P(y=1) = a + logit(p), i.e. with the slope held at 1 (0 when the probabilities are right on
average). ECE: the case-weighted mean |observed fraction − mean probability| over equal-width bins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import optimize, special
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from assay.audit.bootstrap import CasesByReference, quiet, quietly, ratio
from assay.audit.figures import Estimate, finite_or_none
from assay.audit.inputs import AuditInputError, binary_reference, probabilities, same_length

METRICS = ("brier", "log_loss", "ece", "slope", "intercept")
ONE_CLASS = "only one reference class: a logistic calibration fit needs both"
SEPARATED = "the probabilities separate the classes perfectly, so the calibration slope is infinite"
# Probabilities are clipped away from 0 and 1 before logits and logs (as scikit-learn's log_loss does).
_EPS = np.finfo(float).eps
_NEWTON_STEPS = 50


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram; the fractions are None for an empty bin."""

    low: float
    high: float
    n: int
    mean_probability: float | None
    observed_fraction: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "mean_probability": self.mean_probability,
            "observed_fraction": self.observed_fraction,
        }


@dataclass(frozen=True)
class CalibrationTask(CasesByReference):
    """Binary references and predicted probabilities, binned into ``bins`` equal-width bins for ECE."""

    reference: np.ndarray
    probability: np.ndarray
    bins: int = 10
    metrics: tuple[str, ...] = METRICS
    higher_is_better: dict[str, bool | None] = field(
        default_factory=lambda: {"brier": False, "log_loss": False, "ece": False, "slope": None, "intercept": None}
    )

    @classmethod
    def of(cls, reference: Any, probability: Any, bins: int = 10) -> CalibrationTask:
        ref, prob = binary_reference(reference), probabilities(probability)
        same_length(reference=ref, probability=prob)
        if not isinstance(bins, int) or bins < 1:
            raise AuditInputError(f"bins must be a whole number of at least 1, got {bins!r}")
        return cls(ref, prob, bins)

    @property
    def bin_index(self) -> np.ndarray:
        """Each case's bin, as scikit-learn's calibration_curve assigns it (an edge belongs to the lower bin)."""
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        return np.searchsorted(edges[1:-1], self.probability)

    @property
    def logit(self) -> np.ndarray:
        return special.logit(np.clip(self.probability, _EPS, 1 - _EPS))

    def subset(self, mask: np.ndarray) -> CalibrationTask:
        return CalibrationTask(self.reference[mask], self.probability[mask], self.bins)

    def reliability(self) -> list[ReliabilityBin]:
        """Reliability-diagram data: per bin, its cases, mean probability and observed positive fraction."""
        index = self.bin_index
        counts = np.bincount(index, minlength=self.bins)
        sum_p = np.bincount(index, weights=self.probability, minlength=self.bins)
        sum_y = np.bincount(index, weights=self.reference.astype(float), minlength=self.bins)
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        return [
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                int(counts[b]),
                finite_or_none(sum_p[b] / counts[b]) if counts[b] else None,
                finite_or_none(sum_y[b] / counts[b]) if counts[b] else None,
            )
            for b in range(self.bins)
        ]

    def point(self) -> dict[str, Estimate]:
        y, p = self.reference, self.probability
        both_classes = 0 < y.sum() < y.size
        out = {
            "brier": Estimate(float(skm.brier_score_loss(y, p, pos_label=1))),
            "log_loss": Estimate(float(quietly(lambda: skm.log_loss(y, p, labels=[0, 1])))),
            "ece": Estimate(sum(abs(b.observed_fraction - b.mean_probability) * b.n for b in self._filled()) / self.n),
            "slope": Estimate(None, ONE_CLASS),
            "intercept": Estimate(None, ONE_CLASS),
        }
        if both_classes:
            out["intercept"] = Estimate.of(self._intercept(), "the intercept fit did not converge")
            if _separated(np.ones((1, self.n)), self.logit, y)[0]:
                out["slope"] = Estimate(None, SEPARATED)
            else:
                out["slope"] = Estimate.of(self._slope_fit[1], "the logistic fit did not converge")
        return {name: out[name] for name in self.metrics}

    @cached_property
    def _fit_starts(self) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """The full-sample (intercept, slope) of both fits, where each resample's Newton iteration starts."""
        point = self.point()
        slope = (self._slope_fit[0], point["slope"].value) if point["slope"].value is not None else None
        intercept = (point["intercept"].value, 1.0) if point["intercept"].value is not None else None
        return slope, intercept

    def _filled(self) -> list[ReliabilityBin]:
        return [b for b in self.reliability() if b.n]

    @cached_property
    def _slope_fit(self) -> tuple[float, float]:
        """(intercept, slope) of scikit-learn's unpenalised logistic regression of the reference on logit(p)."""
        with quiet():
            fit = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=200).fit(
                self.logit[:, None], self.reference
            )
        return float(fit.intercept_[0]), float(fit.coef_[0, 0])

    def _intercept(self) -> float:
        """The root of the score equation Σ (y − expit(a + logit p)) = 0, by SciPy's brentq."""
        x, y = self.logit, self.reference

        def score(a: float) -> float:
            return float(np.sum(y - special.expit(a + x)))

        try:
            return float(optimize.brentq(score, -50.0, 50.0))
        except ValueError:
            return float("nan")

    def replicates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        y = self.reference.astype(float)
        p = self.probability
        clipped = np.clip(p, _EPS, 1 - _EPS)
        total = weights.sum(axis=1)
        loss = -(y * np.log(clipped) + (1 - y) * np.log1p(-clipped))
        one_hot = np.zeros((self.n, self.bins))
        one_hot[np.arange(self.n), self.bin_index] = 1.0
        gap_per_bin = weights @ (one_hot * (y - p)[:, None])
        out = {
            "brier": weights @ (y - p) ** 2 / total,
            "log_loss": weights @ loss / total,
            "ece": np.abs(gap_per_bin).sum(axis=1) / total,
        }
        if "slope" in self.metrics or "intercept" in self.metrics:
            slope_start, intercept_start = self._fit_starts
            slope = _weighted_logistic(weights, self.logit, y, slope_start, fixed_slope=False)
            out["slope"] = np.where(_separated(weights, self.logit, y), np.nan, slope)
            out["intercept"] = _weighted_logistic(weights, self.logit, y, intercept_start, fixed_slope=True)
        return {name: out[name] for name in self.metrics}


def _separated(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per resample, whether every drawn positive scores at least as high as every drawn negative (or the
    reverse): then the likelihood keeps rising along the slope and no finite maximum exists."""
    drawn = weights > 0
    positive, negative = drawn & (y == 1), drawn & (y == 0)
    lowest_pos = np.where(positive, x, np.inf).min(axis=1)
    highest_pos = np.where(positive, x, -np.inf).max(axis=1)
    lowest_neg = np.where(negative, x, np.inf).min(axis=1)
    highest_neg = np.where(negative, x, -np.inf).max(axis=1)
    return (highest_neg <= lowest_pos) | (highest_pos <= lowest_neg)


def _weighted_logistic(
    weights: np.ndarray, x: np.ndarray, y: np.ndarray, start: tuple[float, float] | None, *, fixed_slope: bool
) -> np.ndarray:
    """Per resample, Newton's method for the weighted logistic fit of y on x, from the full-sample (a, b).

    Returns the slope, or with ``fixed_slope`` the intercept of logit P = a + x. NaN where a fit does not
    converge. Written with two reused buffers: this loop is most of the calibration bootstrap's time.
    """
    rows = weights.shape[0]
    if start is None:
        return np.full(rows, np.nan)
    a, b = np.full(rows, start[0]), np.full(rows, 1.0 if fixed_slope else start[1])
    weighted_y, weighted_xy = weights @ y, weights @ (x * y)
    x_squared = x * x
    mu, spread = np.empty_like(weights), np.empty_like(weights)
    converged = np.zeros(rows, dtype=bool)
    with quiet():
        for _ in range(_NEWTON_STEPS):
            np.multiply(b[:, None], x, out=mu)
            mu += a[:, None]
            special.expit(mu, out=mu)
            np.multiply(weights, mu, out=spread)  # w·μ
            g0 = weighted_y - spread.sum(axis=1)
            mu *= spread  # w·μ²
            spread -= mu  # w·μ(1 − μ): the curvature
            h00 = spread.sum(axis=1)
            if fixed_slope:
                step_a, step_b = ratio(g0, h00), np.zeros(rows)
            else:
                g1 = weighted_xy - (spread + mu) @ x
                h01, h11 = spread @ x, spread @ x_squared
                det = h00 * h11 - h01 * h01
                step_a, step_b = ratio(h11 * g0 - h01 * g1, det), ratio(h00 * g1 - h01 * g0, det)
            a, b = a + step_a, b + step_b
            converged = np.abs(step_a) + np.abs(step_b) < 1e-10
            if np.all(converged | ~np.isfinite(a) | ~np.isfinite(b)):
                break
    estimate = a if fixed_slope else b
    return np.where(converged & np.isfinite(estimate), estimate, np.nan)
