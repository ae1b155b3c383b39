"""The vectorised bootstrap kernels against scikit-learn: a resample given as case weights must score
exactly what scikit-learn scores on the cases drawn; and the point estimates are scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from assay.audit import BinaryTask, CalibrationTask, MulticlassTask, OrdinalTask, RegressionTask


def random_tasks(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 300))
    y = rng.integers(0, 2, n)
    # rounding makes ties, which AUROC counts half and average precision groups
    prob = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1), 1)
    grades = rng.integers(0, 5, n)
    graded = np.clip(grades + rng.integers(-1, 2, n), 0, 4).astype(object)
    graded[rng.random(n) < 0.1] = None
    classes = rng.integers(0, 4, n)
    guess = np.where(rng.random(n) < 0.6, classes, rng.integers(0, 4, n))
    value = rng.normal(50, 10, n)
    smooth = np.clip(rng.beta(2, 2, n), 0.01, 0.99)
    return [
        BinaryTask.of(y, prob, threshold=float(rng.choice([0.3, 0.5, 0.7]))),
        OrdinalTask.of(grades, graded, grades=[0, 1, 2, 3, 4], referable_from=2),
        MulticlassTask.of(classes, guess, labels=[0, 1, 2, 3]),
        RegressionTask.of(value, value + rng.normal(1, 5, n)),
        CalibrationTask.of((rng.random(n) < smooth).astype(int), smooth, bins=int(rng.integers(5, 15))),
    ]


@pytest.mark.parametrize("seed", range(8))
def test_a_weighted_resample_scores_what_scikit_learn_scores_on_the_drawn_cases(seed):
    rng = np.random.default_rng(1000 + seed)
    for task in random_tasks(seed):
        draws = [rng.integers(0, task.n, task.n) for _ in range(3)] + [np.arange(task.n)]
        weights = np.stack([np.bincount(idx, minlength=task.n) for idx in draws]).astype(float)
        kernel = task.replicates(weights)
        for row, idx in enumerate(draws):
            expected = task.subset(idx).point()
            for name in task.metrics:
                want = expected[name].value
                got = kernel[name][row]
                if want is None:
                    assert np.isnan(got), (type(task).__name__, name)
                else:
                    assert got == pytest.approx(want, rel=1e-6, abs=1e-6), (type(task).__name__, name)


def test_binary_point_estimates_are_scikit_learns():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    got = {name: e.value for name, e in BinaryTask.of(y, p, 0.4).point().items()}
    pred = p >= 0.4
    assert got == pytest.approx(
        {
            "sensitivity": skm.recall_score(y, pred),
            "specificity": skm.recall_score(1 - y, ~pred),
            "ppv": skm.precision_score(y, pred),
            "npv": skm.precision_score(1 - y, ~pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "f1": skm.f1_score(y, pred),
            "mcc": skm.matthews_corrcoef(y, pred),
            "auroc": skm.roc_auc_score(y, p),
            "auprc": skm.average_precision_score(y, p),
        }
    )


def test_calibration_agrees_with_scikit_learns_curve_and_logistic_fit():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.99, 2000)
    y = (rng.random(2000) < p**1.5).astype(int)
    task = CalibrationTask.of(y, p, bins=8)
    from sklearn.calibration import calibration_curve

    observed, mean_p = calibration_curve(y, p, n_bins=8)
    filled = [b for b in task.reliability() if b.n]
    assert [b.observed_fraction for b in filled] == pytest.approx(list(observed))
    assert [b.mean_probability for b in filled] == pytest.approx(list(mean_p))
    fit = LogisticRegression(C=np.inf).fit(special.logit(p)[:, None], y)
    assert task.point()["slope"].value == pytest.approx(fit.coef_[0, 0], rel=1e-4)
    assert task.point()["brier"].value == pytest.approx(skm.brier_score_loss(y, p))
    assert task.point()["log_loss"].value == pytest.approx(skm.log_loss(y, p))
