"""Binary classification at a declared threshold: sensitivity, specificity, PPV, NPV, AUROC, AUPRC, ….

Point estimates come from scikit-learn; the bootstrap uses the same definitions as weighted sums over
the cases (see bootstrap.py), which tests check against scikit-learn on resampled cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from assay.audit.bootstrap import CasesByReference, quiet, quietly, ratio
from assay.audit.figures import Estimate
from assay.audit.inputs import AuditInputError, binary_reference, probabilities, same_length

METRICS = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "balanced_accuracy",
    "f1",
    "mcc",
    "auroc",
    "auprc",
)

NO_POSITIVES = "no positive reference cases"
NO_NEGATIVES = "no negative reference cases"
ONE_CLASS = "only one reference class: the metric compares positives with negatives"


@dataclass(frozen=True)
class BinaryTask(CasesByReference):
    """Reference labels (0/1) and predicted probabilities; a case is called positive at ``probability >= threshold``."""

    reference: np.ndarray
    probability: np.ndarray
    threshold: float = 0.5
    metrics: tuple[str, ...] = METRICS
    higher_is_better: dict[str, bool | None] = field(default_factory=lambda: dict.fromkeys(METRICS, True))

    @classmethod
    def of(cls, reference: Any, probability: Any, threshold: float = 0.5) -> BinaryTask:
        """Validated task: 0/1 references, probabilities in [0, 1], a threshold in [0, 1]."""
        ref = binary_reference(reference)
        prob = probabilities(probability)
        same_length(reference=ref, probability=prob)
        if not 0 <= threshold <= 1:
            raise AuditInputError(f"threshold must be within [0, 1], got {threshold}")
        return cls(ref, prob, float(threshold))

    @property
    def predicted(self) -> np.ndarray:
        return (self.probability >= self.threshold).astype(np.int8)

    def subset(self, mask: np.ndarray) -> BinaryTask:
        return BinaryTask(self.reference[mask], self.probability[mask], self.threshold)

    def confusion(self) -> dict[str, int]:
        """tn, fp, fn, tp at the threshold (scikit-learn's confusion_matrix, labels 0 and 1)."""
        tn, fp, fn, tp = skm.confusion_matrix(self.reference, self.predicted, labels=[0, 1]).ravel()
        return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}

    def point(self) -> dict[str, Estimate]:
        y, pred, prob = self.reference, self.predicted, self.probability
        c = self.confusion()
        pos, neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
        checks: dict[str, tuple[bool, str, Callable[[], float]]] = {
            "sensitivity": (pos > 0, NO_POSITIVES, lambda: skm.recall_score(y, pred, zero_division=np.nan)),
            "specificity": (
                neg > 0,
                NO_NEGATIVES,
                lambda: skm.recall_score(y, pred, pos_label=0, zero_division=np.nan),
            ),
            "ppv": (
                c["tp"] + c["fp"] > 0,
                "no case is predicted positive at the threshold",
                lambda: skm.precision_score(y, pred, zero_division=np.nan),
            ),
            "npv": (
                c["tn"] + c["fn"] > 0,
                "no case is predicted negative at the threshold",
                lambda: skm.precision_score(y, pred, pos_label=0, zero_division=np.nan),
            ),
            "balanced_accuracy": (pos > 0 and neg > 0, ONE_CLASS, lambda: skm.balanced_accuracy_score(y, pred)),
            "f1": (
                c["tp"] + c["fp"] + c["fn"] > 0,
                "no positive reference and no positive prediction",
                lambda: skm.f1_score(y, pred, zero_division=np.nan),
            ),
            "mcc": (
                min(pos, neg, c["tp"] + c["fp"], c["tn"] + c["fn"]) > 0,
                "a row or column of the confusion matrix is empty (one class, or one predicted class)",
                lambda: skm.matthews_corrcoef(y, pred),
            ),
            "auroc": (pos > 0 and neg > 0, ONE_CLASS, lambda: skm.roc_auc_score(y, prob)),
            "auprc": (pos > 0, NO_POSITIVES, lambda: skm.average_precision_score(y, prob)),
        }
        out = {}
        for name in self.metrics:
            defined, reason, compute = checks[name]
            out[name] = Estimate.of(quietly(compute), reason) if defined else Estimate(None, reason)
        return out

    def replicates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        y = self.reference.astype(float)
        pred = self.predicted.astype(float)
        tp = weights @ (y * pred)
        fn = weights @ (y * (1 - pred))
        fp = weights @ ((1 - y) * pred)
        tn = weights @ ((1 - y) * (1 - pred))
        sens, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
        with quiet():
            mcc = ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
        out = {
            "sensitivity": sens,
            "specificity": spec,
            "ppv": ratio(tp, tp + fp),
            "npv": ratio(tn, tn + fn),
            "balanced_accuracy": (sens + spec) / 2,
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "mcc": mcc,
        }
        if "auroc" in self.metrics or "auprc" in self.metrics:
            out.update(ranking_replicates(weights, self.reference, self.probability))
        return {name: out[name] for name in self.metrics}


def ranking_replicates(weights: np.ndarray, reference: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """AUROC (Mann–Whitney, ties count half) and average precision (scikit-learn's step-wise AUPRC) per row.

    Cases are grouped by distinct score once; each resample's positive and negative weight per group gives
    both curves without sorting again.
    """
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    y = reference[order].astype(float)
    w = weights[:, order]
    pos = np.add.reduceat(w * y, starts, axis=1)  # resamples × distinct scores, ascending
    neg = np.add.reduceat(w * (1 - y), starts, axis=1)
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    auroc = ratio((pos * (below + 0.5 * neg)).sum(axis=1), total_pos * total_neg)
    # Average precision walks thresholds from the highest score down.
    tp_at = np.cumsum(pos[:, ::-1], axis=1)
    fp_at = np.cumsum(neg[:, ::-1], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp_at + fp_at > 0, tp_at / (tp_at + fp_at), 0.0)
    auprc = ratio((pos[:, ::-1] * precision).sum(axis=1), total_pos)
    return {"auroc": auroc, "auprc": auprc}
