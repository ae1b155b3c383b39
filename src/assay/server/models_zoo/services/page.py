"""A model's results across benchmarks, as one reader may see them.

Which submissions are listed and which scores show is decided by the submissions' own rule, one
:class:`~assay.server.submissions.services.result_access.ResultReader` per reader (hosts of a challenge see
everything of its submissions; the team its own; everyone else the public submissions of listed challenges'
public phases, their public splits only). The audit report is linked where the audits' rule lets the reader see
it (``audits.services.access.may_read_audit``; the audit's page where ``may_see_audit``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from assay.server.audits.services.access import may_read_audit, may_see_audit
from assay.server.submissions.models import Submission
from assay.server.submissions.services.result_access import NOBODY, ResultReader

from ..models import Model


@dataclass
class ModelResult:
    """One submission made from the model, as the reader sees it."""

    submission: Submission
    version_number: int
    output: dict | None
    audit: str  # "report": the reader may read its audit report; "audit": may see its audit; "": neither

    @property
    def leaderboard_url(self) -> str:
        """The submission's entry on the challenge's leaderboard at the phase's first split (the row's anchor
        ``entry-<submission id>``; the page decides what the reader sees)."""
        phase = self.submission.phase
        url = reverse("web:leaderboard", args=[phase.challenge_id])
        first = min((ps.pk for ps in phase.phase_splits.all()), default=None)
        return (f"{url}?split={first}" if first else url) + f"#entry-{self.submission.pk}"

    @property
    def audit_url(self) -> str:
        name = {"report": "web:audit-report", "audit": "web:audit"}.get(self.audit)
        return reverse(name, args=[self.submission.pk]) if name else ""


def results(user, model: Model) -> list[ModelResult]:
    reader = ResultReader(user)
    rows = (
        Submission.objects.filter(model_source__version__model=model, ignore_submission=False)
        .select_related("phase__challenge", "participant_team", "model_source__version")
        .prefetch_related("phase__phase_splits")
        .order_by("-submitted_at", "-id")
    )
    out = []
    for sub in rows:
        if reader.threshold(sub) >= NOBODY:
            continue
        audit = "report" if may_read_audit(user, sub) else "audit" if may_see_audit(user, sub) else ""
        out.append(ModelResult(sub, sub.model_source.version.number, reader.output(sub), audit))
    return out
