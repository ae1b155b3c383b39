"""Multiclass classification from predicted labels: accuracy, balanced accuracy, macro F1, kappa, per-class recall.

Also home of the confusion-matrix kernel and kappa that ordinal grading reuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn import metrics as skm

from assay.audit.bootstrap import CasesByReference, quiet, quietly, ratio
from assay.audit.figures import Estimate
from assay.audit.inputs import declared_labels, label_codes, same_length

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "kappa")


def confusion_counts(weights: np.ndarray, true_codes: np.ndarray, pred_codes: np.ndarray, k: int) -> np.ndarray:
    """Weighted confusion matrices, resamples × k × k (rows: reference, columns: prediction).

    One sparse product for all cells: each case is a one-hot column of the k² cells.
    """
    n = true_codes.size
    cell = sparse.csr_matrix((np.ones(n), (np.arange(n), true_codes * k + pred_codes)), shape=(n, k * k))
    return np.asarray((cell.T @ weights.T).T).reshape(weights.shape[0], k, k)


def kappa_from_counts(counts: np.ndarray, disagreement: np.ndarray) -> np.ndarray:
    """Cohen's kappa per confusion matrix with a k × k disagreement weight (0 on the diagonal)."""
    total = counts.sum(axis=(1, 2))
    rows, cols = counts.sum(axis=2), counts.sum(axis=1)
    expected = ratio(rows[:, :, None] * cols[:, None, :], total[:, None, None])
    observed_cost = (disagreement * counts).sum(axis=(1, 2))
    expected_cost = (disagreement * expected).sum(axis=(1, 2))
    return 1 - ratio(observed_cost, expected_cost)


@dataclass(frozen=True)
class MulticlassTask(CasesByReference):
    """Reference and predicted labels, both from the declared ``labels``."""

    reference: np.ndarray  # codes 0..k-1, positions in labels
    prediction: np.ndarray
    labels: tuple[Any, ...]

    @classmethod
    def of(cls, reference: Any, prediction: Any, labels: Sequence[Any]) -> MulticlassTask:
        declared = declared_labels(labels, "labels")
        ref = label_codes(reference, declared, "reference")
        pred = label_codes(prediction, declared, "prediction")
        same_length(reference=ref, prediction=pred)
        return cls(ref, pred, tuple(declared))

    @property
    def metrics(self) -> tuple[str, ...]:
        return HEADLINE + tuple(f"recall:{label}" for label in self.labels)

    @property
    def higher_is_better(self) -> dict[str, bool | None]:
        return dict.fromkeys(self.metrics, True)

    def subset(self, mask: np.ndarray) -> MulticlassTask:
        return MulticlassTask(self.reference[mask], self.prediction[mask], self.labels)

    def point(self) -> dict[str, Estimate]:
        y, p, k = self.reference, self.prediction, len(self.labels)
        codes = list(range(k))
        present = np.unique(y)
        out = {
            "accuracy": Estimate.of(skm.accuracy_score(y, p), "no cases"),
            "balanced_accuracy": Estimate.of(
                quietly(lambda: np.mean(skm.recall_score(y, p, labels=present, average=None))), "no cases"
            ),
            "macro_f1": Estimate.of(
                quietly(lambda: skm.f1_score(y, p, labels=codes, average="macro", zero_division=np.nan)),
                "no class occurs in the reference or the predictions",
            ),
            "kappa": Estimate.of(
                quietly(lambda: skm.cohen_kappa_score(y, p, labels=codes)),
                "chance agreement is total (a single class in both reference and prediction)",
            ),
        }
        recalls = quietly(lambda: skm.recall_score(y, p, labels=codes, average=None, zero_division=np.nan))
        for label, value in zip(self.labels, recalls, strict=True):
            out[f"recall:{label}"] = Estimate.of(value, f"no reference case of class {label!r}")
        return out

    def replicates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        k = len(self.labels)
        counts = confusion_counts(weights, self.reference, self.prediction, k)
        hits = np.diagonal(counts, axis1=1, axis2=2)
        rows, cols = counts.sum(axis=2), counts.sum(axis=1)
        recall = ratio(hits, rows)
        with quiet():
            f1 = ratio(2 * hits, rows + cols)
            out = {
                "accuracy": ratio(hits.sum(axis=1), counts.sum(axis=(1, 2))),
                "balanced_accuracy": np.nanmean(recall, axis=1),
                "macro_f1": np.nanmean(f1, axis=1),
                "kappa": kappa_from_counts(counts, 1 - np.eye(k)),
            }
        for i, label in enumerate(self.labels):
            out[f"recall:{label}"] = recall[:, i]
        return out
