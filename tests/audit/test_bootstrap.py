"""Properties of the stratified, seeded percentile bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from assay.audit import AuditInputError, BinaryTask, OrdinalTask, RegressionTask, figures
from assay.audit.bootstrap import resample_weights


def binary_task(n: int, seed: int = 0) -> BinaryTask:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return BinaryTask.of(y, np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1))


def test_resamples_keep_every_stratum_size():
    strata = np.array([0] * 7 + [1] * 3 + [2] * 12)
    for block in resample_weights(strata, 50, np.random.default_rng(0)):
        for s in (0, 1, 2):
            assert set(block[:, strata == s].sum(axis=1)) == {float((strata == s).sum())}


def test_intervals_contain_the_point_estimate_on_typical_data():
    for name, figure in figures(binary_task(800), resamples=500, seed=1).items():
        assert figure.low <= figure.value <= figure.high, name
        assert figure.low < figure.high, name


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others():
    task = binary_task(300)
    first, again = figures(task, resamples=200, seed=5), figures(task, resamples=200, seed=5)
    other = figures(task, resamples=200, seed=6)
    assert first == again
    assert all((first[m].low, first[m].high) != (other[m].low, other[m].high) for m in task.metrics)


def test_intervals_narrow_as_the_test_set_grows():
    small, large = figures(binary_task(200), resamples=300), figures(binary_task(5000), resamples=300)
    for name in small:
        assert large[name].high - large[name].low < (small[name].high - small[name].low) / 2, name


def test_no_resamples_means_point_estimates_without_intervals():
    figure = figures(binary_task(100), resamples=0)["auroc"]
    assert figure.value is not None and (figure.low, figure.high) == (None, None) and figure.n == 100


def test_95_percent_intervals_cover_the_true_sensitivity_about_95_percent_of_the_time():
    """Coverage on a simulated case: 200 test sets of 150 positives whose true sensitivity is 0.8."""
    rng = np.random.default_rng(2026)
    covered = 0
    for trial in range(200):
        detected = (rng.random(150) < 0.8).astype(float)
        task = BinaryTask(np.ones(150, dtype=np.int8), detected, 0.5, metrics=("sensitivity",))
        figure = figures(task, resamples=400, seed=trial)["sensitivity"]
        covered += figure.low <= 0.8 <= figure.high
    assert 0.89 <= covered / 200 <= 0.99


def test_regression_and_ordinal_intervals_too():
    rng = np.random.default_rng(4)
    y = rng.normal(size=400)
    for figure in figures(RegressionTask.of(y, y + rng.normal(0.2, 0.5, 400)), resamples=200).values():
        assert figure.low <= figure.value <= figure.high
    grades = rng.integers(0, 5, 400)
    task = OrdinalTask.of(grades, np.clip(grades + rng.integers(-1, 2, 400), 0, 4), [0, 1, 2, 3, 4], 2)
    qwk = figures(task, resamples=200)["qwk"]
    assert 0 < qwk.low <= qwk.value <= qwk.high < 1


@pytest.mark.parametrize(
    ("options", "message"),
    [({"resamples": -1}, "resamples must be 0 or more, got -1"), ({"level": 1.5}, "level must be between 0 and 1")],
)
def test_bad_bootstrap_settings_are_refused(options, message):
    with pytest.raises(AuditInputError, match=message):
        figures(binary_task(50), **options)
