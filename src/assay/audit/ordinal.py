"""Ordinal grading (e.g. diabetic retinopathy grades 0-4): quadratic weighted kappa, accuracy,
referable sensitivity/specificity at grade ≥ k, and coverage.

A prediction may be missing (None/NaN): the model declined to grade the case (ungradable image).
Coverage is the fraction of cases graded; the other metrics are over the graded cases, so a model
cannot raise its kappa by abstaining without its coverage showing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from assay.audit.bootstrap import CasesByReference, quietly, ratio
from assay.audit.figures import Estimate
from assay.audit.inputs import AuditInputError, declared_labels, label_codes, same_length
from assay.audit.multiclass import confusion_counts, kappa_from_counts

METRICS = ("qwk", "accuracy", "referable_sensitivity", "referable_specificity", "coverage")


@dataclass(frozen=True)
class OrdinalTask(CasesByReference):
    """Reference and predicted grades from the ordered ``grades``; referable means grade ≥ ``referable_from``."""

    reference: np.ndarray  # positions in grades, 0..k-1
    prediction: np.ndarray  # positions in grades, -1 where the model gave no grade
    grades: tuple[Any, ...]
    referable_from: int  # position of the first referable grade
    metrics: tuple[str, ...] = METRICS

    @classmethod
    def of(cls, reference: Any, prediction: Any, grades: Sequence[Any], referable_from: Any) -> OrdinalTask:
        """``grades`` in clinical order (lowest first); ``referable_from`` is one of them."""
        declared = declared_labels(grades, "grades")
        if referable_from not in declared or declared.index(referable_from) == 0:
            raise AuditInputError(
                f"referable_from must be one of the grades above the lowest {declared[1:]}, got {referable_from!r}"
            )
        ref = label_codes(reference, declared, "reference")
        pred = label_codes(prediction, declared, "prediction", allow_missing=True)
        same_length(reference=ref, prediction=pred)
        return cls(ref, pred, tuple(declared), declared.index(referable_from))

    @property
    def higher_is_better(self) -> dict[str, bool | None]:
        return dict.fromkeys(self.metrics, True)

    def subset(self, mask: np.ndarray) -> OrdinalTask:
        return OrdinalTask(self.reference[mask], self.prediction[mask], self.grades, self.referable_from)

    def point(self) -> dict[str, Estimate]:
        graded = self.prediction >= 0
        y, p = self.reference[graded], self.prediction[graded]
        codes = list(range(len(self.grades)))
        none_graded = "the model graded none of the cases"
        if not graded.any():
            out = {name: Estimate(None, none_graded) for name in METRICS}
            out["coverage"] = Estimate(0.0)
            return {name: out[name] for name in self.metrics}
        ref_referable, pred_referable = (y >= self.referable_from), (p >= self.referable_from)
        sens = quietly(lambda: skm.recall_score(ref_referable, pred_referable, zero_division=np.nan))
        spec = quietly(lambda: skm.recall_score(ref_referable, pred_referable, pos_label=False, zero_division=np.nan))
        out = {
            "qwk": Estimate.of(
                quietly(lambda: skm.cohen_kappa_score(y, p, labels=codes, weights="quadratic")),
                "no disagreement is expected by chance (reference and predictions each use a single grade)",
            ),
            "accuracy": Estimate.of(skm.accuracy_score(y, p), none_graded),
            "referable_sensitivity": Estimate.of(sens, "no graded case is referable in the reference"),
            "referable_specificity": Estimate.of(spec, "no graded case is non-referable in the reference"),
            "coverage": Estimate(float(graded.mean())),
        }
        return {name: out[name] for name in self.metrics}

    def replicates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        k = len(self.grades)
        graded = self.prediction >= 0
        counts = confusion_counts(weights[:, graded], self.reference[graded], self.prediction[graded], k)
        grade = np.arange(k)
        r = self.referable_from
        referable_hits = counts[:, r:, r:].sum(axis=(1, 2))
        non_referable_hits = counts[:, :r, :r].sum(axis=(1, 2))
        out = {
            "qwk": kappa_from_counts(counts, (grade[:, None] - grade[None, :]) ** 2.0),
            "accuracy": ratio(np.trace(counts, axis1=1, axis2=2), counts.sum(axis=(1, 2))),
            "referable_sensitivity": ratio(referable_hits, counts[:, r:, :].sum(axis=(1, 2))),
            "referable_specificity": ratio(non_referable_hits, counts[:, :r, :].sum(axis=(1, 2))),
            "coverage": ratio(weights @ graded.astype(float), weights.sum(axis=1)),
        }
        return {name: out[name] for name in self.metrics}
