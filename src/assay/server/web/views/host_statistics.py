"""The host's Statistics tab of a challenge: submissions per day (a chart and its table), teams, participants,
failures by reason and the median evaluation time (submissions.services.statistics). Hosts only; 404 for others."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assay.server.submissions.services.statistics import challenge_statistics

from ..charts import daily_bars_svg
from .common import challenge_context, hosted_or_404


@login_required
@require_GET
def statistics(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    stats = challenge_statistics(request.user, challenge)
    context = challenge_context(request, challenge, "host")
    context.update(
        host_tab="statistics",
        stats=stats,
        chart=daily_bars_svg([(d.day, d.submissions, d.failed) for d in stats.days]),
    )
    return render(request, "web/host/statistics.html", context)
