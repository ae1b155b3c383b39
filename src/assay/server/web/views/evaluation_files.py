"""One evaluation's file (stdout, stderr, result, metadata) on the web, for the submission's team and the
challenge's hosts: the earlier evaluations a host's re-run kept as well as the current one. The rule is
``submissions.services.attempts.evaluation_file``'s, the one /api/v1 serves too."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from assay.server.submissions.models import Submission
from assay.server.submissions.services.attempts import evaluation_file


@login_required
@require_GET
def evaluation_file_page(request: HttpRequest, submission_id: int, number: int, kind: str) -> HttpResponse:
    sub = Submission.objects.select_related("phase__challenge__host_team").filter(pk=submission_id).first()
    if sub is None:
        raise Http404("no such submission")
    found = evaluation_file(request.user, sub, number, kind)
    if found.url is not None:  # an object store serves the bytes; the rule above allowed the read
        return redirect(found.url)
    response = HttpResponse(found.body, content_type=found.content_type)
    response["Content-Disposition"] = f'inline; filename="{found.filename}"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"  # logs are text, never a page
    response["X-Content-Type-Options"] = "nosniff"
    return response
