"""Leaderboard pages: one table per phase-split, sortable by any label, with a chart of scores over time.

Who sees which rows is decided by ``assay.server.leaderboards.services`` (visibility 1/2/3, public and
private submissions, bans, baselines); this view only renders what it returns.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.history import history
from assay.server.leaderboards.services.ranking import leaderboard
from assay.server.leaderboards.services.visibility import access_for

from ..charts import Point, score_history_svg
from .common import challenge_context, challenge_or_404


def _readable_splits(request: HttpRequest, challenge) -> list[tuple[ChallengePhaseSplit, Any]]:
    splits = (
        ChallengePhaseSplit.objects.filter(phase__challenge=challenge)
        .select_related("phase__challenge", "dataset_split", "leaderboard")
        .order_by("phase__config_id", "dataset_split__config_id", "leaderboard__config_id")
    )
    out = []
    for ps in splits:
        try:
            out.append((ps, access_for(request.user, ps)))
        except LeaderboardError:
            continue
    return out


def _history(request: HttpRequest, board, entries: str | None) -> list[Point]:
    """Improvements the reader may see (each team's new bests, and the leaderboard's), for the chart."""
    try:
        data = history(request.user, board.phase_split, label=board.order_by, entries=entries)
    except LeaderboardError:
        return []
    seen: dict[int, Point] = {}
    for line in data["teams"]:
        for p in line["points"]:
            seen[p["submission"]] = Point(p["at"], p["value"], line["team"]["name"])
    for p in data.get("top") or []:
        seen.setdefault(p["submission"], Point(p["at"], p["value"], p["team"]["name"]))
    return [p for p in seen.values() if p.value is not None]


@require_GET
def leaderboard_page(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = challenge_or_404(request, pk)
    context = challenge_context(request, challenge, "leaderboard")
    splits = _readable_splits(request, challenge)
    context["splits"] = splits
    wanted = request.GET.get("split", "")
    chosen = next((ps for ps, _ in splits if str(ps.pk) == wanted), splits[0][0] if splits else None)
    context["split"] = chosen
    if chosen is None:
        return render(request, "web/challenge/leaderboard.html", context)
    page_text = request.GET.get("page", "1")
    page = int(page_text) if page_text.isdigit() and 0 < int(page_text) < 100000 else 1
    entries = request.GET.get("entries") if request.GET.get("entries") in ("public", "all") else None
    order_by = request.GET.get("order_by") or None
    try:
        board = leaderboard(request.user, chosen, order_by=order_by, page=page, entries=entries)
    except LeaderboardError as exc:
        context["error"] = exc.message
        if order_by:
            try:
                board = leaderboard(request.user, chosen, page=1, entries=entries)
            except LeaderboardError:
                return render(request, "web/challenge/leaderboard.html", context, status=exc.status)
        else:
            return render(request, "web/challenge/leaderboard.html", context, status=exc.status)
    context["board"] = board
    shown = {row["entry"] for row in board.rows}
    context["own_rows"] = [row for row in board.own if row["entry"] not in shown]
    context["labels"] = list(board.rules.labels)
    context["sortable"] = set(board.rules.sortable)
    context["metadata"] = (chosen.leaderboard.schema or {}).get("metadata") or {}
    if board.show_scores and board.order_by in board.rules.labels:
        points = _history(request, board, entries)
        context["chart"] = score_history_svg(
            points,
            label=board.order_by,
            higher_is_better=not board.ascending,
            precision=chosen.leaderboard_decimal_precision,
        )
        context["chart_points"] = sorted(points, key=lambda p: p.at)[-200:]
    template = "web/challenge/_leaderboard_board.html" if request.htmx else "web/challenge/leaderboard.html"
    return render(request, template, context)
