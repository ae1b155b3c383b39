"""Regression (a continuous reference, e.g. a measured volume): MAE, RMSE, mean bias and R²."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from assay.audit.bootstrap import CasesByReference, quietly, ratio
from assay.audit.figures import Estimate
from assay.audit.inputs import numbers, same_length

METRICS = ("mae", "rmse", "bias", "r2")


@dataclass(frozen=True)
class RegressionTask(CasesByReference):
    """Reference and predicted values. The bootstrap is unstratified: there is no class to keep balanced."""

    reference: np.ndarray
    prediction: np.ndarray
    metrics: tuple[str, ...] = METRICS
    # Bias (mean prediction − reference) has no better direction: its ideal is 0.
    higher_is_better: dict[str, bool | None] = field(
        default_factory=lambda: {"mae": False, "rmse": False, "bias": None, "r2": True}
    )

    @classmethod
    def of(cls, reference: Any, prediction: Any) -> RegressionTask:
        ref, pred = numbers(reference, "reference"), numbers(prediction, "prediction")
        same_length(reference=ref, prediction=pred)
        return cls(ref, pred)

    @property
    def strata(self) -> np.ndarray:
        return np.zeros(self.n, dtype=np.int8)

    def subset(self, mask: np.ndarray) -> RegressionTask:
        return RegressionTask(self.reference[mask], self.prediction[mask])

    def point(self) -> dict[str, Estimate]:
        y, p = self.reference, self.prediction
        out = {
            "mae": Estimate(float(skm.mean_absolute_error(y, p))),
            "rmse": Estimate(float(skm.root_mean_squared_error(y, p))),
            "bias": Estimate(float(np.mean(p - y))),
            "r2": Estimate.of(
                quietly(lambda: skm.r2_score(y, p, force_finite=False)),
                "the reference is constant, so there is no variance to explain",
            ),
        }
        return {name: out[name] for name in self.metrics}

    def replicates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        error = self.prediction - self.reference
        y = self.reference - self.reference.mean()  # centred: the variance below then loses no precision
        total = weights.sum(axis=1)
        mean_y = weights @ y / total
        spread = weights @ (y * y) - total * mean_y**2
        squared = weights @ (error * error)
        # A constant reference leaves rounding noise in ``spread``: treat it as no variance, as point() does.
        spread = np.where(spread > 1e-12 * np.maximum(weights @ (y * y), 1e-300), spread, 0.0)
        out = {
            "mae": weights @ np.abs(error) / total,
            "rmse": np.sqrt(squared / total),
            "bias": weights @ error / total,
            "r2": 1 - ratio(squared, spread),
        }
        return {name: out[name] for name in self.metrics}
