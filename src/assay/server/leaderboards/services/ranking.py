"""A leaderboard page: EvalAI's ranking (``reference/evalai.md`` §4.2), computed in the database.

Rows come from the standings (one per team per sort label and audience, plus every baseline),
so a page is an index range scan whatever the number of entries. Rules, in EvalAI's words where
they agree:

* sort by ``default_order_by`` or ``?order_by=<label>`` (any label when ``is_multi_metric_leaderboard``);
  the direction is the phase-split's unless the label's metadata sets ``sort_ascending``
  (:mod:`.rules` says why a metadata entry *without* it does not flip the order, unlike EvalAI);
* each team shows its best entry for that label (or its latest, ``show_leaderboard_by_latest_submission``);
  baselines always show and never take a team's place;
* flagged, hidden, banned-team and (in a public phase) host-made entries are left out, baselines excepted;
  only finished submissions count (and partially evaluated ones where the phase allows them);
* ties share a rank (competition ranking: 1, 1, 3); rows with the sort label missing or undefined (a NaN
  the script returned, stored as null) rank last whatever the direction, together, shown as "—";
  baselines are shown in place without a rank and do not push anyone down;
* ties are listed by smaller error bar, then earlier submission;
* a row's confidence intervals (``intervals``) are shown beside its scores, and ``tied_with_leader`` says
  whether its interval on the sort label overlaps the leader's (:mod:`.intervals` holds the rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower

from assay.evaluation.contract import UNDEFINED, display_metric
from assay.server.challenges.models import Challenge, ChallengePhaseSplit
from assay.server.prepared import Prepared, PreparedSlice
from assay.server.teams.models import ParticipantTeamMember

from ..models import Standing
from .aggregation import Overall, overall_column
from .errors import LeaderboardError
from .intervals import Interval, interval_of, tied_with_leader
from .rules import HEAVY_FIELDS, OVERALL, Rules, with_standings_hints
from .standings import ensure_current, is_stale, refresh_team
from .visibility import Access, access_for

ORDER = ("sort_key", "tie_key", "submitted_at", "entry_id")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200  # as every list of the native API; the exports give the whole board
MAX_PAGE = 1_000_000  # keeps the offset a number every database takes
MAX_ID = 2**63 - 1
MISSING = UNDEFINED  # a missing or undefined (NaN) metric, as every face shows it

# A row is read as plain values (no model instances: 50 rows x 4 models would cost more than the SQL).
_ROW_VALUES = (
    "id", "sort_key", "is_baseline", "team_id", "entry_id", "submission_id",
    "entry__result", "entry__error", "entry__intervals", "team__name", "team__team_url",
    "submission__method_name", "submission__submitted_at", "submission__is_public",
    "submission__is_verified_by_host", "submission__is_baseline", "submission__started_at",
    "submission__completed_at", "submission__submission_metadata", "submission__status",
    "submission__is_flagged", "submission__ignore_submission",
)  # fmt: skip
Row = dict[str, Any]


@dataclass
class Board:
    """One page (or all) of a leaderboard as one reader may see it."""

    phase_split: ChallengePhaseSplit
    rules: Rules
    access: Access
    order_by: str
    ascending: bool
    count: int
    page: int
    page_size: int
    rows: list[dict[str, Any]]
    own: list[dict[str, Any]] = field(default_factory=list)
    overall: Overall | None = None
    leader: tuple[int, Interval | None] | None = None  # the leading entry on the sort label, and its interval

    @property
    def show_scores(self) -> bool:
        """``show_scores_on_leaderboard: false`` hides the numbers from participants; hosts keep them."""
        return self.phase_split.show_scores_on_leaderboard or self.access.is_host

    @property
    def has_intervals(self) -> bool:
        """Whether a row shows a confidence interval (the page then explains them and the "tied" mark)."""
        return any(row.get("intervals") for row in [*self.rows, *self.own])

    @property
    def pages(self) -> int:
        return max(1, -(-self.count // self.page_size)) if self.page_size else 1

    def header(self) -> dict[str, Any]:
        ps = self.phase_split
        agg = self.rules.aggregation
        return {
            "phase_split": {
                "id": ps.pk,
                "phase": ps.phase.codename,
                "split": ps.dataset_split.codename,
                "visibility": self.access.visibility,
                "reveal_at": ps.reveal_at,
                "precision": ps.leaderboard_decimal_precision,
                "latest_submission": ps.show_leaderboard_by_latest_submission,
                "show_scores": self.show_scores,
                "show_execution_time": ps.show_execution_time,
            },
            "labels": list(self.rules.labels),
            "sortable": list(self.rules.sortable) + ([OVERALL] if agg else []),
            "order_by": self.order_by,
            "ascending": self.ascending,
            "entries": "public" if self.access.public_only else "all",
            "viewer": {"level": self.access.level, "team": self.access.team_id},
            "overall": None
            if not agg
            else {
                "title": agg.get("title") or "Overall",
                "method": agg.get("method"),
                "shown": self.overall is not None and self.overall.hidden is None,
                "hidden": self.overall.hidden if self.overall else None,
            },
        }


def banned_team_ids(challenge: Challenge) -> list[int]:
    """Teams with a member whose e-mail is in ``banned_email_ids`` (compared without case)."""
    banned = {str(e).strip().lower() for e in challenge.banned_email_ids or [] if str(e).strip()}
    if not banned:
        return []
    return list(
        ParticipantTeamMember.objects.annotate(mail=Lower("user__email"))
        .filter(mail__in=banned)
        .values_list("team_id", flat=True)
        .distinct()
    )


def visible_standings(rules: Rules, label: str, public_only: bool, banned: list[int]) -> QuerySet[Standing]:
    """Standings that may show: one index range of the standings, without a join, so counting a
    board of 10⁴ teams stays cheap. Rows are checked against their submission when read (:func:`_live`)."""
    return _standings(rules.phase_split.pk, label, public_only, banned)


def _standings(split_id: int, label: str, public_only: bool, banned: list[int]) -> QuerySet[Standing]:
    """:func:`visible_standings` of a phase-split given by its id (or a mark the query is compiled with)."""
    audience = Standing.Audience.PUBLIC if public_only else Standing.Audience.ALL
    qs = Standing.objects.filter(phase_split_id=split_id, label=label, audience=audience)
    if banned:
        qs = qs.exclude(team_id__in=banned)
    return qs


def _live(rules: Rules, public_only: bool, qs: QuerySet[Standing], **extra) -> list[Row]:
    """The rows of ``qs`` (with the ``extra`` annotations), after repairing the teams whose standing is
    out of date and reading again. A stale row is never shown, even if the repair could not place its
    team's next entry."""
    qs = qs.annotate(**extra) if extra else qs
    return _fresh(rules, public_only, lambda: list(qs.values(*_ROW_VALUES, *extra)))


def _fresh(rules: Rules, public_only: bool, read: Callable[[], list[Row]]) -> list[Row]:
    """``read()``'s rows, as :func:`_live` returns them."""
    rows = read()
    stale = {r["team_id"] for r in rows if is_stale(rules, public_only, r)}
    if stale:
        for team_id in sorted(stale):
            refresh_team(rules.phase_split, team_id)
        rows = read()
    return [r for r in rows if not is_stale(rules, public_only, r)]


# The queries every page built runs, compiled once per database (and page size): the ORM compiling
# them cost more than the database running them (assay.server.prepared). Run with these stand-ins
# replaced: no row has a negative id, an audience but 0 and 1 (a negative one is out of the column's
# range, which the ORM compiles to no query at all), or a label starting with a NUL.
_SPLIT_MARK, _AUDIENCE_MARK, _LABEL_MARK, _KEY_MARK = -201, 32_001, "\x00label", -(2.0**1000)
_TEAM_MARK, _ENTRY_MARK = -202, -1_000_000  # entry ids: _ENTRY_MARK - i for the i-th of a page
_QUERIES: dict[tuple[str, str, int], Prepared] = {}


def _compiled(name: str, size: int = 0) -> Prepared:
    """``page``: the first ``size`` rows of a board as :func:`_live` reads them; ``window``: the entry ids
    of ``size`` rows from an offset (the index alone); ``entries``: the rows of up to ``size`` entries
    (ids ``e0`` …); ``leader``: the first ranked row; ``own``: :func:`_own`'s row of a team; ``counts``: a
    board's rows, and its ranked rows with a sort key below and up to a key (what :func:`_ranks` needs)."""
    key = (connection.alias, name, size)
    found = _QUERIES.get(key)
    if found is None:
        board = Standing.objects.filter(phase_split_id=_SPLIT_MARK, label=_LABEL_MARK, audience=_AUDIENCE_MARK)
        marks: dict[str, Any] = {"split": _SPLIT_MARK, "label": _LABEL_MARK, "audience": _AUDIENCE_MARK}
        if name == "page":
            qs = board.order_by(*ORDER)[:size].values(*_ROW_VALUES)
        elif name == "window":
            window = board.order_by(*ORDER).values_list("entry_id", flat=True)[:size]
            found = _QUERIES[key] = PreparedSlice(window, **marks)
            return found
        elif name == "entries":
            ids = {f"e{i}": _ENTRY_MARK - i for i in range(size)}
            qs = board.filter(entry_id__in=list(ids.values())).order_by(*ORDER).values(*_ROW_VALUES)
            marks.update(ids)
        elif name == "leader":
            qs = board.filter(is_baseline=False).order_by(*ORDER)[:1].values(*_ROW_VALUES)
        elif name == "own":
            del marks["audience"]  # two audiences: the team's row among all, its rank among the public rows
            qs = _own_query(_SPLIT_MARK, _LABEL_MARK, _TEAM_MARK, []).values(*_ROW_VALUES, "ahead")
            marks["team"] = _TEAM_MARK
        else:
            ranked = Q(is_baseline=False)
            qs = (
                board.order_by()
                .values("phase_split")
                .annotate(
                    total=Count("*"),
                    lt=Count("sort_key", filter=ranked & Q(sort_key__lt=_KEY_MARK)),
                    le=Count("sort_key", filter=ranked & Q(sort_key__lte=_KEY_MARK)),
                )
                .values_list("total", "lt", "le")
            )
            marks["key"] = _KEY_MARK
        found = _QUERIES[key] = Prepared(qs, **marks)
    return found


@dataclass(frozen=True)
class _Shown:
    """Which standings a board shows: one index range (:func:`visible_standings`); ``qs`` is it as a
    queryset, the other fields say it to the compiled queries (None when a banned team is left out,
    which they do not do)."""

    qs: QuerySet[Standing]
    where: dict[str, Any] | None

    def first(self, rules: Rules, public_only: bool, size: int) -> list[Row]:
        if self.where is None:
            return _live(rules, public_only, self.qs.order_by(*ORDER)[:size])
        page = _compiled("page", size)
        return _fresh(
            rules, public_only, lambda: [dict(zip(_ROW_VALUES, r, strict=True)) for r in page.rows(**self.where)]
        )

    def deeper(self, rules: Rules, public_only: bool, page: int, size: int) -> list[Row]:
        """The rows of page ``page`` (> 1): the entry ids of the page from the index alone, skipping the
        rows before it (an offset), then only those rows read with their joins."""
        start = (page - 1) * size
        if self.where is None:
            ordered = self.qs.order_by(*ORDER)
            window = list(ordered.values_list("entry_id", flat=True)[start : start + size])
            position = {entry: i for i, entry in enumerate(window)}
            found = _live(rules, public_only, self.qs.filter(entry_id__in=window))
            return sorted(found, key=lambda r: position[r["entry_id"]])
        window = [r[0] for r in _compiled("window", size).rows(start, **self.where)]
        if not window:
            return []
        # the rows in the board's order: the window's (ORDER ends with the entry, unique in a board)
        ids = {f"e{i}": window[i] if i < len(window) else -1 for i in range(size)}  # no entry has id -1
        entries = _compiled("entries", size)
        return _fresh(
            rules,
            public_only,
            lambda: [dict(zip(_ROW_VALUES, r, strict=True)) for r in entries.rows(**self.where, **ids)],
        )

    def leader(self, rules: Rules, public_only: bool) -> list[Row]:
        """The board's first ranked row (none when it has none), as :func:`_live` reads it."""
        if self.where is None:
            return _live(rules, public_only, self.qs.filter(is_baseline=False).order_by(*ORDER)[:1])
        first = _compiled("leader")
        return _fresh(
            rules, public_only, lambda: [dict(zip(_ROW_VALUES, r, strict=True)) for r in first.rows(**self.where)]
        )

    def counts(self, key: float) -> tuple[int, int, int]:
        """The number of rows, of ranked rows with a sort key below ``key``, and up to it."""
        if self.where is None:
            counts = self.qs.filter(is_baseline=False, sort_key__lte=key).aggregate(
                lt=Count("sort_key", filter=Q(sort_key__lt=key)), le=Count("sort_key")
            )
            return self.qs.count(), counts["lt"], counts["le"]
        found = _compiled("counts").rows(**self.where, key=key)
        return found[0] if found else (0, 0, 0)


def load_phase_split(ps: ChallengePhaseSplit | int) -> ChallengePhaseSplit:
    """The phase-split with what ranking reads of it (its phase, challenge, host team, leaderboard and
    dataset split; :func:`~.rules.with_standings_hints`): one query, compiled once per database, as every
    page built reads it (the ORM compiling it was two thirds of a page's CPU)."""
    pk = ps.pk if isinstance(ps, ChallengePhaseSplit) else ps
    if not 0 < pk <= MAX_ID:  # a URL may carry any number; the database takes 64 bits
        raise LeaderboardError("not_found", "no such leaderboard", 404)
    key = (connection.alias, "split", 0)
    query = _QUERIES.get(key)
    if query is None:
        related = ChallengePhaseSplit.objects.select_related(
            "phase__challenge__host_team", "leaderboard", "dataset_split"
        )
        qs = with_standings_hints(related.filter(pk=_SPLIT_MARK).order_by().defer(*HEAVY_FIELDS))
        query = _QUERIES[key] = Prepared(qs, pk=_SPLIT_MARK)
    found = query.instances(pk=pk)
    if not found:
        raise LeaderboardError("not_found", "no such leaderboard", 404)
    return found[0]


def _resolve_order(rules: Rules, order_by: str | None) -> str:
    if not order_by:
        return rules.default_sort
    if order_by in rules.labels:
        if order_by not in rules.sortable:
            raise LeaderboardError(
                "bad_order_by", f"this leaderboard is sorted by {rules.default_order_by!r} only", 400
            )
        return order_by
    if order_by == OVERALL and rules.aggregation:
        return OVERALL
    raise LeaderboardError("bad_order_by", f"{order_by!r} is not a label of this leaderboard {list(rules.labels)}", 400)


def leaderboard(
    user,
    ps: ChallengePhaseSplit | int,
    *,
    order_by: str | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    entries: str | None = None,
    everything: bool = False,
    access: Access | None = None,
) -> Board:
    """The page ``page`` of ``ps`` as ``user`` may see it (every row when ``everything``). ``access``: the
    reader's access as :func:`access_for` decided it for ``ps`` (loaded by :func:`load_phase_split`) and
    ``entries``, when the caller has just read both (the page cache, to choose the cached page it builds)."""
    if access is None:
        ps = load_phase_split(ps)
        access = access_for(user, ps, entries)
    elif not isinstance(ps, ChallengePhaseSplit):
        raise TypeError("a decided access comes with the phase-split it was decided for")
    rules = ensure_current(ps)
    order = _resolve_order(rules, order_by)
    label = rules.default_order_by if order == OVERALL else order
    ascending = rules.ascending[label] if order != OVERALL else True
    page = min(max(1, int(page)), MAX_PAGE)
    page_size = min(max(1, int(page_size)), MAX_PAGE_SIZE)
    banned = banned_team_ids(ps.phase.challenge)
    public_only = access.public_only
    qs = visible_standings(rules, label, public_only, banned)
    audience = Standing.Audience.PUBLIC if public_only else Standing.Audience.ALL
    shown = _Shown(qs, None if banned else {"split": ps.pk, "label": label, "audience": int(audience)})

    if access.level == "own":
        rows = _live(rules, public_only, qs.filter(team_id=access.team_id, is_baseline=False).order_by(*ORDER))
        board = Board(ps, rules, access, order, ascending, len(rows), 1, max(len(rows), 1), [])
        board.rows = [_row(board, r, None) for r in rows]
        return board

    overall = overall_column(user, rules, access, qs) if rules.aggregation else None
    if order == OVERALL and overall is not None and overall.hidden is not None:
        raise LeaderboardError("bad_order_by", overall.hidden, 403)
    if order == OVERALL:
        ids = overall.order()
        count = len(ids)
        if everything:
            page, page_size = 1, max(count, 1)
        chosen = ids[(page - 1) * page_size : page * page_size]
        by_id = {r["id"]: r for r in _live(rules, public_only, qs.filter(pk__in=chosen))}
        rows = [by_id[i] for i in chosen if i in by_id]
        ranks = [overall.rank(r["id"]) for r in rows]
    else:
        ordered = qs.order_by(*ORDER)
        if everything:
            rows = _live(rules, public_only, ordered)
            page, page_size = 1, max(len(rows), 1)
        elif page == 1:
            rows = shown.first(rules, public_only, page_size)
        else:
            rows = shown.deeper(rules, public_only, page, page_size)
        count, ranks = _ranks(shown, rows, everything)
    board = Board(ps, rules, access, order, ascending, count, page, page_size, [], overall=overall)
    if order != OVERALL and board.show_scores:
        board.leader = _leader(rules, label, public_only, shown, rows if page == 1 else None)
    board.rows = [_row(board, r, rank) for r, rank in zip(rows, ranks, strict=True)]
    if access.team_id is not None and not access.is_host and order != OVERALL:
        board.own = _own(board, label, banned)
    return board


def _leader(
    rules: Rules, label: str, public_only: bool, shown: _Shown, first_page: list[Row] | None
) -> tuple[int, Interval | None] | None:
    """The entry ranked first on the sort label (its id and its interval there), read from the first page
    when in hand, else with one query; None when the board has no ranked row with a value."""
    ranked = [r for r in first_page or [] if not r["is_baseline"]]
    if not ranked:
        ranked = shown.leader(rules, public_only)
    if not ranked or ranked[0]["sort_key"] == float("inf"):  # a missing or undefined value leads nothing
        return None
    return ranked[0]["entry_id"], interval_of(ranked[0]["entry__intervals"], label)


def _ranks(shown: _Shown, page: list[Row], everything: bool = False) -> tuple[int, list[int | None]]:
    """The number of rows, and the competition ranks of a page's rows, from counts on the board's index
    range however deep the page is (one statement; none when the whole board is in hand).

    With k0 the page's first ranked key, L rows rank strictly before it and T tie with or precede it;
    any other key k on the page ranks after all T plus the page's rows between k0 and k.
    """
    ranked = [r for r in page if not r["is_baseline"]]
    if everything and not ranked:
        return len(page), [None] * len(page)
    if not ranked:
        return shown.counts(0.0)[0], [None] * len(page)
    k0 = ranked[0]["sort_key"]
    if everything:  # the whole board is in hand: k0 is the best key
        total, less, through = len(page), 0, sum(1 for r in ranked if r["sort_key"] == k0)
    else:  # the board's size, and its ranked rows before and up to k0
        total, less, through = shown.counts(k0)
    out: list[int | None] = []
    above = 0  # ranked rows on this page with a key beyond k0, before the current one
    last_key, last_rank = None, None
    for r in page:
        key = r["sort_key"]
        if r["is_baseline"]:
            out.append(None)
            continue
        if key == k0:
            rank = less + 1
        elif key == last_key:
            rank = last_rank
        else:
            rank = 1 + through + above
        if key != k0:
            above += 1
        last_key, last_rank = key, rank
        out.append(rank)
    return total, out


def _own(board: Board, label: str, banned: list[int]) -> list[dict[str, Any]]:
    """The reader's team's best entry among all its submissions, public or not, and the rank it would
    take among the public rows: a team sees where a private submission would stand."""
    rules, team, split = board.rules, board.access.team_id, board.phase_split.pk
    if banned:  # the compiled query leaves no team out
        qs = _own_query(split, label, team, banned).values(*_ROW_VALUES, "ahead")
        found = _fresh(rules, False, lambda: list(qs.all()))  # a new queryset each read: none cached
    else:
        own = _compiled("own")
        names = (*_ROW_VALUES, "ahead")
        found = _fresh(
            rules,
            False,
            lambda: [dict(zip(names, r, strict=True)) for r in own.rows(split=split, label=label, team=team)],
        )
    return [_row(board, r, 1 + r["ahead"]) for r in found[:1]]


def _own_query(split_id: int, label: str, team_id: int, banned: list[int]) -> QuerySet[Standing]:
    """The team's row among all its entries, annotated ``ahead``: the public ranked rows of other teams
    with a lower sort key (one query, the count inside)."""
    ahead = (
        _standings(split_id, label, True, banned)
        .filter(is_baseline=False, sort_key__lt=OuterRef("sort_key"))
        .exclude(team_id=team_id)
        .order_by()
        .values("phase_split")
        .annotate(n=Count("*"))
        .values("n")
    )
    mine = _standings(split_id, label, False, banned).filter(team_id=team_id, is_baseline=False)
    return mine.annotate(ahead=Coalesce(Subquery(ahead), 0))


def fmt(value: float | None, precision: int) -> str:
    return display_metric(value, precision)


def _row(board: Board, r: Row, rank: int | None) -> dict[str, Any]:
    ps, rules = board.phase_split, board.rules
    result = r["entry__result"] or {}
    error = r["entry__error"] or {}
    row: dict[str, Any] = {
        "rank": rank if board.access.shows_ranks else None,
        "team": {"id": r["team_id"], "name": r["team__name"], "url": r["team__team_url"]},
        "submission": {
            "id": r["submission_id"],
            "method_name": r["submission__method_name"],
            "submitted_at": r["submission__submitted_at"],
            "is_public": r["submission__is_public"],
            "is_verified_by_host": r["submission__is_verified_by_host"],
            "metadata": r["submission__submission_metadata"],
        },
        "entry": r["entry_id"],
        "is_baseline": r["is_baseline"],
        "is_own": r["team_id"] == board.access.team_id and not r["is_baseline"],
    }
    if board.show_scores:
        scores = {label: _number(result.get(label)) for label in rules.labels}
        row["scores"] = scores
        row["errors"] = {label: _number(error.get(f"error_{label}")) for label in rules.labels}
        row["display"] = {label: fmt(v, ps.leaderboard_decimal_precision) for label, v in scores.items()}
        # evaluated but undefined (NaN, stored as null), as opposed to missing from a partial evaluation
        row["undefined"] = [label for label in rules.labels if label in result and result[label] is None]
        intervals = {label: interval_of(r["entry__intervals"], label) for label in rules.labels}
        row["intervals"] = {label: list(pair) for label, pair in intervals.items() if pair is not None}
        row["tied_with_leader"] = _tied(board, r["entry_id"], intervals)
    if ps.show_execution_time:
        started, completed = r["submission__started_at"], r["submission__completed_at"]
        row["execution_time"] = (completed - started).total_seconds() if started and completed else None
    if board.overall is not None and board.overall.hidden is None:
        value = board.overall.value(r["id"])
        row["overall"] = {
            "rank": board.overall.rank(r["id"]) if board.access.shows_ranks else None,
            "value": value if board.show_scores else None,
        }
    return row


def _tied(board: Board, entry_id: int, intervals: dict[str, Interval | None]) -> bool | None:
    """:func:`~.intervals.tied_with_leader` on the board's sort label (None when sorted by the overall column)."""
    if board.leader is None:
        return None
    leader_id, leader_interval = board.leader
    return tied_with_leader(intervals.get(board.order_by), leader_interval, is_leader=entry_id == leader_id)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def evalai_rows(board: Board) -> list[dict[str, Any]]:
    """The rows in the shape of EvalAI's leaderboard API (``reference/evalai.md`` §4.2), for old clients."""
    ps, rules = board.phase_split, board.rules
    label = board.rules.default_order_by if board.order_by == OVERALL else board.order_by
    out = []
    for row in board.rows:
        scores = row.get("scores")
        errors = row.get("errors") or {}
        item: dict[str, Any] = {
            "id": row["entry"],
            "submission__participant_team": row["team"]["id"],
            "submission__participant_team__team_name": row["team"]["name"],
            "submission__participant_team__team_url": row["team"]["url"],
            "submission__is_baseline": row["is_baseline"],
            "submission__is_public": row["submission"]["is_public"],
            "challenge_phase_split": ps.pk,
            "leaderboard__schema": ps.leaderboard.schema,
            "submission__submitted_at": row["submission"]["submitted_at"],
            "submission__method_name": row["submission"]["method_name"],
            "submission__id": row["submission"]["id"],
            "submission__submission_metadata": row["submission"]["metadata"],
            "submission__is_verified_by_host": row["submission"]["is_verified_by_host"],
        }
        if scores is not None:  # EvalAI drops result and error when scores are hidden
            # as EvalAI: a stored value as it is (null when undefined), "#" when the label is missing
            undefined = set(row.get("undefined") or ())
            item["result"] = ["#" if scores[x] is None and x not in undefined else scores[x] for x in rules.labels]
            item["error"] = [errors.get(x) for x in rules.labels]
            item["filtering_score"] = scores.get(label) or 0
            item["filtering_error"] = errors.get(label) or 0
        if ps.show_execution_time:
            item["submission__execution_time"] = row.get("execution_time")
        out.append(item)
    return out
