"""Stratified, seeded percentile bootstrap over every metric of a task at once.

A resample is a row of case weights (how often each case was drawn), drawn within each stratum — the
reference class — so every resample keeps the test set's class balance and sensitivity/specificity stay
defined. Tasks compute all their metrics from a block of such rows with matrix products (``replicates``),
so 10^4 cases × 1000 resamples take seconds instead of the minutes a per-resample scikit-learn call
would; tests check those kernels against scikit-learn on the resampled cases.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

import numpy as np

from assay.audit.figures import Estimate, Figure
from assay.audit.inputs import AuditInputError

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
# Cells of one weight block (resamples × cases): bounds memory at ~16 MB of float64 whatever n is.
_BLOCK_CELLS = 2_000_000
T = TypeVar("T")


class Task(Protocol):
    """Per-case data of one kind (binary, ordinal, …) and the metrics computed on it."""

    metrics: tuple[str, ...]
    #: True where a larger value is better, False where smaller is, None where neither (calibration slope).
    higher_is_better: dict[str, bool | None]

    @property
    def n(self) -> int: ...

    @property
    def strata(self) -> np.ndarray:
        """One integer per case: resampling happens within each stratum."""
        ...

    def point(self) -> dict[str, Estimate]:
        """Each metric on the cases as given, through scikit-learn, None with a reason if undefined."""
        ...

    def replicates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric for each row of ``weights`` (resamples × cases); NaN where undefined."""
        ...

    def subset(self, mask: np.ndarray) -> Task:
        """The same task on the cases where ``mask`` is true (a subgroup)."""
        ...


class CasesByReference:
    """Base of the tasks: n is the number of cases, and the reference class of each case is its stratum."""

    reference: np.ndarray

    @property
    def n(self) -> int:
        return int(self.reference.size)

    @property
    def strata(self) -> np.ndarray:
        return self.reference


def resample_weights(strata: np.ndarray, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of bootstrap weights, each row one resample drawn with replacement within every stratum."""
    n = strata.size
    members = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        weights = np.zeros((rows, n))
        offsets = (np.arange(rows) * n)[:, None]
        for idx in members:
            draws = idx[rng.integers(0, idx.size, size=(rows, idx.size))]
            counts = np.bincount((draws + offsets).ravel(), minlength=rows * n)
            weights += counts.reshape(rows, n)
        yield weights


def figures(
    task: Task,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | np.random.SeedSequence = 0,
    level: float = DEFAULT_LEVEL,
) -> dict[str, Figure]:
    """Every metric of ``task`` with its percentile interval at ``level`` from ``resamples`` resamples.

    The same seed gives the same intervals. ``resamples=0`` gives point estimates without intervals.
    """
    if resamples < 0:
        raise AuditInputError(f"resamples must be 0 or more, got {resamples}")
    if not 0 < level < 1:
        raise AuditInputError(f"level must be between 0 and 1, got {level}")
    point = task.point()
    intervals: dict[str, tuple[float | None, float | None]] = {}
    if resamples:
        draws = replicate_matrix(task, resamples, np.random.default_rng(seed))
        intervals = {name: percentile_interval(draws[name], level) for name in task.metrics}
    out = {}
    for name in task.metrics:
        estimate = point[name]
        low, high = intervals.get(name, (None, None)) if estimate.value is not None else (None, None)
        out[name] = Figure(estimate.value, low, high, n=task.n, reason=estimate.reason)
    return out


def replicate_matrix(task: Task, resamples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each metric's ``resamples`` bootstrap replicates."""
    blocks: dict[str, list[np.ndarray]] = {name: [] for name in task.metrics}
    for weights in resample_weights(task.strata, resamples, rng):
        for name, values in task.replicates(weights).items():
            blocks[name].append(values)
    return {name: np.concatenate(parts) for name, parts in blocks.items()}


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """The central ``level`` percentile interval of the replicates where the metric was defined."""
    defined = replicates[np.isfinite(replicates)]
    if defined.size == 0:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN (not a warning) where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(np.true_divide(numerator, denominator), dtype=float)
    return np.where(np.isfinite(out), out, np.nan)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence NumPy's and scikit-learn's warnings about undefined values: the figures carry our reasons."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        warnings.simplefilter("ignore")
        yield


def quietly(compute: Callable[[], T]) -> T:
    """``compute()`` under ``quiet()``."""
    with quiet():
        return compute()
