"""Leaderboard endpoints of the native API: pages, history, exports (thin: the rules live in
``assay.server.leaderboards.services``). Anonymous readers are let in; each service decides what
they may see, so every endpoint applies the same visibility."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit
from assay.server.challenges.services.listing import challenge_listed
from assay.server.challenges.services.roles import is_host
from assay.server.leaderboards.services import exports
from assay.server.leaderboards.services.board_cache import page_body
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.history import history
from assay.server.leaderboards.services.ranking import DEFAULT_PAGE_SIZE, MAX_ID, evalai_rows, leaderboard
from assay.server.leaderboards.services.visibility import Access, access_for
from assay.server.refusals import Refusal

from .base import ApiView, OpenView

_ORDER = OpenApiParameter("order_by", str, description="A label, or `_overall` for the rank-aggregation column.")
_ENTRIES = OpenApiParameter("entries", str, enum=["public", "all"], description="`all`: hosts only.")


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:  # also a number too long to convert
        raise LeaderboardError("invalid", f"{name} must be a whole number", 400) from None


def _page_url(request: Request, page: int) -> str:
    query = request.query_params.copy()
    query["page"] = str(page)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


class LeaderboardRowOut(serializers.Serializer):
    """One row (``shape=assay``). Scores, error bars, intervals and ties are absent when the hosts hide scores.
    Fields are documented as optional: ``shape=evalai`` answers EvalAI's row fields instead."""

    rank = serializers.IntegerField(allow_null=True, required=False)
    team = serializers.DictField(required=False)
    submission = serializers.DictField(required=False)
    entry = serializers.IntegerField(required=False)
    is_baseline = serializers.BooleanField(required=False)
    is_own = serializers.BooleanField(required=False)
    scores = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False)
    errors = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False)
    display = serializers.DictField(child=serializers.CharField(), required=False)
    undefined = serializers.ListField(child=serializers.CharField(), required=False)
    intervals = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        required=False,
        help_text="Confidence intervals beside the scores: {label: [low, high]}, only the labels that have one.",
    )
    tied_with_leader = serializers.BooleanField(
        allow_null=True,
        required=False,
        help_text="Whether this row's interval on the sort label overlaps the leader's: statistically tied with "
        "the leader. Null when it cannot be said (either interval missing, no leader, the leader's own row, "
        "or sorted by the overall column).",
    )
    execution_time = serializers.FloatField(allow_null=True, required=False)
    overall = serializers.DictField(required=False)


class LeaderboardPageOut(serializers.Serializer):
    """A page of a leaderboard: the board's header, the page and its rows (and the reader's own best entry)."""

    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    pages = serializers.IntegerField()
    results = LeaderboardRowOut(many=True)
    own = LeaderboardRowOut(many=True, required=False)
    phase_split = serializers.DictField(required=False)
    labels = serializers.ListField(child=serializers.CharField(), required=False)
    sortable = serializers.ListField(child=serializers.CharField(), required=False)
    order_by = serializers.CharField(required=False)
    ascending = serializers.BooleanField(required=False)
    entries = serializers.CharField(required=False)
    viewer = serializers.DictField(required=False)
    overall = serializers.DictField(allow_null=True, required=False)


class _LeaderboardView(OpenView):
    """Anyone may ask; each leaderboard service decides what this reader sees."""


class PhaseSplitLeaderboardView(_LeaderboardView):
    @extend_schema(
        parameters=[
            _ORDER,
            _ENTRIES,
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="1–200, default 50."),
            OpenApiParameter("shape", str, enum=["assay", "evalai"], description="`evalai`: EvalAI's row fields."),
        ],
        responses={200: LeaderboardPageOut},
    )
    def get(self, request: Request, phase_split_id: int) -> HttpResponse:
        page, page_size = _int(request, "page", 1), _int(request, "page_size", DEFAULT_PAGE_SIZE)
        if request.accepted_renderer.format != "json":  # the browsable API: not cached
            return Response(self._data(request, phase_split_id, page, page_size))
        # the links in the body carry the host and every query parameter, so the key does too
        query = (request.scheme, request.get_host(), sorted(request.query_params.lists()))
        body = page_body(
            request.user,
            phase_split_id,
            request.query_params.get("entries") or None,
            query,
            lambda ps, access: JSONRenderer().render(self._data(request, ps, page, page_size, access)),
        )
        return HttpResponse(body, content_type="application/json")

    def _data(
        self, request: Request, ps: ChallengePhaseSplit | int, page: int, page_size: int, access: Access | None = None
    ) -> dict:
        q = request.query_params
        board = leaderboard(
            request.user,
            ps,
            access=access,
            order_by=q.get("order_by") or None,
            page=page,
            page_size=page_size,
            entries=q.get("entries") or None,
        )
        body = {
            "count": board.count,
            "next": _page_url(request, board.page + 1) if board.page < board.pages else None,
            "previous": _page_url(request, board.page - 1) if board.page > 1 else None,
            "page": board.page,
            "page_size": board.page_size,
            "pages": board.pages,
        }
        if q.get("shape") == "evalai":
            return {**body, "results": evalai_rows(board)}
        return {**board.header(), **body, "results": board.rows, "own": board.own}


class PhaseSplitHistoryView(_LeaderboardView):
    @extend_schema(
        parameters=[
            OpenApiParameter("label", str),
            OpenApiParameter("teams", str, description="Comma-separated team ids; default: the current top."),
            OpenApiParameter("top", int, description="How many leading teams get a line (default 10, at most 50)."),
            _ENTRIES,
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, phase_split_id: int) -> Response:
        q = request.query_params
        teams = None
        if q.get("teams"):
            try:
                teams = [int(t) for t in q["teams"].split(",") if t.strip()]
            except ValueError:
                raise Refusal("invalid", "teams must be comma-separated team ids", 400) from None
        data = history(
            request.user,
            phase_split_id,
            label=q.get("label") or None,
            team_ids=teams,
            top=_int(request, "top", 10),
            entries=q.get("entries") or None,
        )
        return Response(data)


class PhaseSplitLeaderboardExportView(_LeaderboardView):
    @extend_schema(parameters=[_ORDER, _ENTRIES], responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, phase_split_id: int, fmt: str):
        q = request.query_params
        board = leaderboard(
            request.user,
            phase_split_id,
            order_by=q.get("order_by") or None,
            entries=q.get("entries") or None,
            everything=True,
        )
        name = f"leaderboard-{board.phase_split.phase.codename}-{board.phase_split.dataset_split.codename}"
        if fmt == "json":
            response = StreamingHttpResponse([exports.leaderboard_json(board)], content_type="application/json")
        else:
            response = StreamingHttpResponse(
                exports.csv_lines(exports.leaderboard_table(board)), content_type="text/csv; charset=utf-8"
            )
        response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
        return response


class PhaseSubmissionsExportView(ApiView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, phase_id: int):
        if phase_id > MAX_ID:
            raise Refusal("not_found", "no such phase", 404)
        phase = get_object_or_404(ChallengePhase.objects.select_related("challenge__host_team"), pk=phase_id)
        rows = exports.submissions_table(request.user, phase)
        response = StreamingHttpResponse(exports.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="submissions-{phase.codename}.csv"'
        return response


class ChallengeLeaderboardsView(_LeaderboardView):
    """The phase-splits of a challenge the reader may open, with what they may see of each."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, challenge_id: int) -> Response:
        if challenge_id > MAX_ID:
            raise Refusal("not_found", "no such challenge", 404)
        challenge = get_object_or_404(Challenge.objects.select_related("host_team"), pk=challenge_id)
        if not challenge_listed(challenge) and not is_host(request.user, challenge):
            raise Refusal("not_found", "no such challenge", 404)
        out = []
        for phase in challenge.phases.prefetch_related("phase_splits__dataset_split", "phase_splits__leaderboard"):
            for ps in phase.phase_splits.all():
                try:
                    access = access_for(request.user, ps)
                except LeaderboardError:
                    continue
                out.append(
                    {
                        "id": ps.pk,
                        "phase": phase.codename,
                        "split": ps.dataset_split.codename,
                        "labels": ps.leaderboard.labels,
                        "visibility": access.visibility,
                        "reveal_at": ps.reveal_at,
                        "level": access.level,
                    }
                )
        return Response({"challenge": challenge.pk, "leaderboards": out})
