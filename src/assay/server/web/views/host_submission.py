"""The host's page of one submission: what it is, its actions (re-run, or re-run as a new submission), and every
evaluation it had — the current one and the earlier ones a re-run kept, each with its worker, what it was
scored against and links to its files (submissions.services.attempts)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from assay.server.submissions.models import Submission
from assay.server.submissions.services.attempts import evaluations

from .common import challenge_context, hosted_or_404


@login_required
@require_GET
def submission_page(request: HttpRequest, pk: int, submission_id: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    subs = Submission.objects.select_related(
        "phase__challenge",
        "participant_team",
        "created_by",
        "leased_by",
        "scored_package_version__package",
        "phase__data_package_version__package",
    )
    sub = get_object_or_404(subs, pk=submission_id, phase__challenge=challenge)
    context = challenge_context(request, challenge, "host")
    context.update(host_tab="submissions", s=sub, evaluations=evaluations(request.user, sub))
    return render(request, "web/host/submission.html", context)
