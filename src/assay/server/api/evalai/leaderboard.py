"""EvalAI's leaderboard endpoint (§4.2, §4.3) over the leaderboards service: its rows, its pagination,
and its refusal of a non-public leaderboard to non-hosts ("Sorry, the leaderboard is not public!")."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.leaderboards.services.board_cache import page_body
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.ranking import evalai_rows, leaderboard
from assay.server.leaderboards.services.visibility import Access

from .base import fail

PAGE_SIZE = 150
NOT_PUBLIC = "Sorry, the leaderboard is not public!"


def _page(request: Request) -> tuple[int, int]:
    try:
        page = max(1, int(request.query_params.get("page", 1)))
        size = min(max(1, int(request.query_params.get("page_size", PAGE_SIZE))), 1000)
    except ValueError:
        raise fail("page and page_size are numbers", 400) from None
    return page, size


def leaderboard_response(view, request: Request, phase_split_id: int, *, all_entries: bool) -> HttpResponse:
    page, size = _page(request)
    entries = "all" if all_entries else None
    try:
        if request.accepted_renderer.format != "json":  # the browsable API: not cached
            return Response(_data(request, phase_split_id, page, size, entries))
        # the same cache as /api/v1's pages, under its own query key (the links carry the whole URL)
        body = page_body(
            request.user,
            phase_split_id,
            entries,
            ("evalai", request.build_absolute_uri()),
            lambda ps, access: JSONRenderer().render(_data(request, ps, page, size, entries, access)),
        )
    except LeaderboardError as exc:
        if exc.code == "leaderboard_not_public":  # EvalAI answers every non-host the same 400
            raise fail(NOT_PUBLIC, 400, exc.code) from None
        raise
    return HttpResponse(body, content_type="application/json")


def _data(
    request: Request,
    ps: ChallengePhaseSplit | int,
    page: int,
    size: int,
    entries: str | None,
    access: Access | None = None,
) -> dict:
    order_by = request.query_params.get("order_by") or None
    board = leaderboard(request.user, ps, order_by=order_by, page=page, page_size=size, entries=entries, access=access)
    if entries == "all" and not board.access.is_host:
        raise fail("Sorry, you are not authorized to make this request", 403, "forbidden")
    if not board.access.shows_ranks or (board.access.visibility != 3 and not board.access.is_host):
        raise fail(NOT_PUBLIC, 400, "leaderboard_not_public")
    url = request.build_absolute_uri()
    last = board.pages
    return {
        "count": board.count,
        "next": replace_query_param(url, "page", page + 1) if page < last else None,
        "previous": (remove_query_param(url, "page") if page == 2 else replace_query_param(url, "page", page - 1))
        if page > 1
        else None,
        "results": evalai_rows(board),
    }
