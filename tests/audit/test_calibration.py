"""Calibration on synthetic data whose calibration is known by construction."""

from __future__ import annotations

import numpy as np
from scipy import special

from assay.audit import CalibrationTask, figures


def outcomes(true_probability: np.ndarray, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(true_probability.size) < true_probability).astype(int)


def test_perfectly_calibrated_probabilities():
    p = np.random.default_rng(0).uniform(0.02, 0.98, 20_000)
    got = figures(CalibrationTask.of(outcomes(p, 1), p), resamples=100, seed=0)
    assert abs(got["slope"].value - 1) < 0.06 and got["slope"].low <= 1 <= got["slope"].high
    assert abs(got["intercept"].value) < 0.06 and got["intercept"].low <= 0 <= got["intercept"].high
    assert got["ece"].value < 0.02


def test_overconfident_probabilities_have_a_slope_near_the_shrinkage():
    truth = np.random.default_rng(2).uniform(0.05, 0.95, 20_000)
    overconfident = special.expit(2 * special.logit(truth))  # twice the true log-odds
    got = figures(CalibrationTask.of(outcomes(truth, 3), overconfident), resamples=50, seed=0)
    assert 0.45 < got["slope"].value < 0.55 and got["slope"].high < 0.6
    assert got["ece"].value > 0.05


def test_probabilities_too_high_on_average_have_a_negative_intercept():
    truth = np.random.default_rng(4).uniform(0.05, 0.6, 20_000)
    inflated = special.expit(special.logit(truth) + 1)
    got = figures(CalibrationTask.of(outcomes(truth, 5), inflated), resamples=50, seed=0)
    assert -1.1 < got["intercept"].value < -0.9 and got["intercept"].high < -0.8
