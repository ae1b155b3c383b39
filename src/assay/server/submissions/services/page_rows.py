"""How a list of submissions reads a page of rows: the rows alone, and what they point at once per page.

A listed submission names its phase (and through it its challenge), its team and its creator. Joined into every
row, each row built a phase, a challenge, a team and a user of its own (about a hundred fields, dates and JSON
parsed again for every row) though a page names a handful of them: most of a listed row's cost. Here each is
read once per page by id and shared by the rows that name it: a fixed number of statements, whatever the rows.
Every face that lists submissions (/api/v1, EvalAI's, the web pages) reads its rows through :func:`shared_relations`.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from assay.server.challenges.models import ChallengePhase

from ..models import Submission


def shared_relations(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """``submissions`` with each row's phase (with its challenge), team and creator read once per page (one
    statement each, after the page's rows) instead of joined into every row."""
    return submissions.select_related(None).prefetch_related(
        Prefetch("phase", queryset=ChallengePhase.objects.select_related("challenge")),
        "participant_team",
        "created_by",
    )
