"""Keeping each team's current best (or latest) entry per phase-split, label and audience up to date.

Ranking 10⁶ entries on every read takes the database a second or more; a page of the standings
kept here is an index range scan. They change only through:

* :func:`refresh_submission` — called (``leaderboards.services.entries``, receiving
  ``submissions.signals``) in the transaction that writes a submission's results or changes what it
  may show (flag, hide, baseline, publish, cancel, re-run). Only that submission changed, so it is
  *placed*: compared with its team's current row per label and audience (one indexed read) and
  written where it wins, a write or two. The team is recomputed where placing cannot be exact: a row
  of the submission that no longer fits it (hidden, flagged, cancelled, made private, un-baselined,
  a new result replacing the entry) — its team's next entry must be found — or a row whose
  submission changed behind its back (select-one made the team's other submissions private);
* :func:`ensure_current` — called by every reader; when the phase-split's settings changed since the
  standings were built (see :meth:`Rules.signature`), it rebuilds them from the entries, in SQL
  (at 10⁶ entries that takes tens of seconds: the Django admin's "rebuild" action does it ahead);
* :func:`refresh_team` — also called by a reader that meets a row whose submission changed behind
  the services' back (an admin edit), so such a row is never shown and its team is repaired.

A team's entry is the first by (sort key, error bar, submission time, id) — or the newest by
submission time when the phase-split shows the latest submission — among all its entries, and among
its public ones. Rebuilds choose it with one window query in the database; placing compares the same
keys, computed by the same expressions. Baseline entries each get their own row and never take a
team's slot. Every writer first locks the phase-split's :class:`StandingsState` row, so writers of one
phase-split take turns and a reader's rebuild never misses a result being written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, FloatField, Func, Q, QuerySet, Subquery, Value, Window
from django.db.models.fields.json import compile_json_path
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.challenges.services.read_versions import board
from assay.server.prepared import Prepared, insert, write
from assay.server.read_cache import bump
from assay.server.submissions.models import Submission

from .. import signals
from ..models import LeaderboardEntry, Standing, StandingsState
from .rules import HEAVY_FIELDS, IdList, Rules, rules_for, with_standings_hints

INF = math.inf


class JsonNumber(Func):
    """The number under ``key`` of a JSON column (NULL when missing), extracted once by the database.

    Django's key transform parses the document twice on SQLite (to tell JSON nulls from numbers);
    results hold finite numbers or null (an undefined metric; checked when written by
    :func:`assay.evaluation.contract.check_output`), and both databases extract a JSON null as NULL,
    so one extraction is enough.
    """

    output_field = FloatField()

    def __init__(self, column: str, key: str) -> None:
        super().__init__(F(column))
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(({sql} ->> %s) AS double precision)", (*params, self.key)

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(JSON_EXTRACT({sql}, %s) AS REAL)", (*params, compile_json_path([self.key]))


def value_of(label: str) -> JsonNumber:
    """The label's number in an entry's ``result`` (NULL when missing), computed by the database."""
    return JsonNumber("result", label)


def error_of(label: str) -> JsonNumber:
    return JsonNumber("error", f"error_{label}")


def sort_key_of(label: str, ascending: bool):
    """Lower ranks first whatever the direction; a missing or undefined (null) value sorts after every
    number (+inf, never NULL, so SQLite and PostgreSQL order it alike). ±inf is refused when written,
    so no number can tie with it.

    EvalAI turns a missing value into 0, which puts it first on an ascending board; Assay puts it last.
    """
    value = value_of(label)
    signed = value if ascending else value * Value(-1.0)
    return Coalesce(signed, Value(INF), output_field=FloatField())


def tie_key_of(label: str):
    """EvalAI's second key: the smaller error bar first; no error bar counts as 0, as in EvalAI."""
    return Coalesce(error_of(label), Value(0.0), output_field=FloatField())


def eligible_entries(rules: Rules, public_only: bool, team_ids: Iterable[int] | None = None) -> QuerySet:
    """Entries that may appear: live, of a finished (or, where allowed, partial) submission that is
    neither flagged nor hidden, not by a host in a public phase unless a baseline, and — for the
    participants' view — public unless a baseline (a host marks a baseline to show it)."""
    qs = LeaderboardEntry.objects.filter(
        phase_split=rules.phase_split,
        is_disabled=False,
        submission__status__in=rules.statuses,
        submission__is_flagged=False,
        submission__ignore_submission=False,
    )
    if rules.exclude_host_submissions and rules.host_user_ids:
        qs = qs.exclude(submission__is_baseline=False, submission__created_by_id__in=rules.host_user_ids)
    if public_only:
        qs = qs.filter(Q(submission__is_public=True) | Q(submission__is_baseline=True))
    if team_ids is not None:
        qs = qs.filter(participant_team_id__in=list(team_ids))
    return qs


def _keys(rules: Rules) -> dict:
    """Per sortable label i: its sort key ``sk{i}`` and tie key ``tk{i}``, computed in the database."""
    out = {}
    for i, label in enumerate(rules.sortable):
        out[f"sk{i}"] = sort_key_of(label, rules.ascending[label])
        out[f"tk{i}"] = tie_key_of(label)
    return out


def _order(rules: Rules, i: int) -> list:
    if rules.latest:
        return [F("at").desc(), F("id").desc()]
    return [F(f"sk{i}").asc(), F(f"tk{i}").asc(), F("at").asc(), F("id").asc()]


def _chosen(rules: Rules, team_ids: Iterable[int] | None) -> Iterable[tuple[int, int, bool, tuple]]:
    """(label index, audience, is baseline, (entry, team, submission, sort key, tie key, submitted at)).

    One pass over the entries for every label and both audiences: per label, one window numbers
    each team's entries among all of them, another among its public ones and its private ones apart
    (partitioned by ``is_public``); a row first in either is chosen. Baselines are all chosen.
    """
    n = len(rules.sortable)
    base = (
        eligible_entries(rules, False, team_ids)
        .order_by()
        .annotate(at=F("submission__submitted_at"), pub=F("submission__is_public"), **_keys(rules))
    )
    team = F("participant_team_id")
    windows = {}
    for i in range(n):
        windows[f"all{i}"] = Window(RowNumber(), partition_by=[team], order_by=_order(rules, i))
        windows[f"pub{i}"] = Window(RowNumber(), partition_by=[team, F("pub")], order_by=_order(rules, i))
    first = Q()
    for name in windows:
        first |= Q(**{name: 1})
    keys = [f"{k}{i}" for i in range(n) for k in ("sk", "tk")]
    teams = (
        base.filter(submission__is_baseline=False)
        .annotate(**windows)
        .filter(first)
        .values_list("id", "participant_team_id", "submission_id", "at", "pub", *keys, *windows)
    )
    # a plain query, not a server-side cursor: the answer is small (a few rows per team), and
    # PostgreSQL runs cursors without parallel workers
    for entry, team_id, sub, at, pub, *rest in list(teams):
        for i in range(n):
            row = (entry, team_id, sub, rest[2 * i], rest[2 * i + 1], at)
            if rest[2 * n + 2 * i] == 1:
                yield i, Standing.Audience.ALL, False, row
            if pub and rest[2 * n + 2 * i + 1] == 1:
                yield i, Standing.Audience.PUBLIC, False, row
    baselines = base.filter(submission__is_baseline=True).values_list(
        "id", "participant_team_id", "submission_id", "at", *keys
    )
    for entry, team_id, sub, at, *rest in list(baselines):
        for i in range(n):
            row = (entry, team_id, sub, rest[2 * i], rest[2 * i + 1], at)
            yield i, Standing.Audience.ALL, True, row
            yield i, Standing.Audience.PUBLIC, True, row


def _standing(rules: Rules, i: int, audience: int, baseline: bool, row: tuple) -> Standing:
    entry_id, team_id, sub_id, sk, tk, at = row
    return Standing(
        phase_split_id=rules.phase_split.pk,
        label=rules.sortable[i],
        audience=audience,
        team_id=team_id,
        entry_id=entry_id,
        submission_id=sub_id,
        is_baseline=baseline,
        sort_key=INF if sk is None else sk,
        tie_key=0.0 if tk is None else tk,
        submitted_at=at,
    )


def _build(rules: Rules, team_ids: list[int] | None) -> int:
    rows = [_standing(rules, i, audience, baseline, row) for i, audience, baseline, row in _chosen(rules, team_ids)]
    Standing.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _load(ps: ChallengePhaseSplit | int) -> ChallengePhaseSplit:
    pk = ps.pk if isinstance(ps, ChallengePhaseSplit) else ps
    return ChallengePhaseSplit.objects.select_related("phase__challenge", "leaderboard").get(pk=pk)


def _locked_state(ps: ChallengePhaseSplit) -> StandingsState:
    StandingsState.objects.get_or_create(phase_split=ps)
    return StandingsState.objects.select_for_update().get(phase_split=ps)


def _rebuild_locked(rules: Rules, state: StandingsState, signature: str) -> int:
    if connection.vendor == "postgresql":
        # compiling the window query's expressions takes PostgreSQL's JIT longer than running them,
        # and sorting 10⁶ entries in the default 4 MB spills to disk
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
    Standing.objects.filter(phase_split=rules.phase_split).delete()
    count = _build(rules, None)
    state.signature = signature
    state.rebuilt_at = timezone.now()
    state.save(update_fields=["signature", "rebuilt_at"])
    return count


def rebuild(ps: ChallengePhaseSplit | int) -> int:
    """Recompute every standing of ``ps`` from its entries (settings changed, or data loaded in bulk)."""
    ps = _load(ps)
    rules = rules_for(ps)
    with transaction.atomic():
        count = _rebuild_locked(rules, _locked_state(ps), rules.signature())
        bump(board(ps.phase.challenge_id))  # no signal: pages cached before would show the old standings
        signals.standings_changed.send(sender=Standing, phase_id=ps.phase_id, phase_split_ids=(ps.pk,))
    return count


def ensure_current(ps: ChallengePhaseSplit) -> Rules:
    """The rules of ``ps``, after rebuilding its standings if they were built under other settings."""
    rules = rules_for(ps)
    signature = rules.signature()
    known = getattr(ps, "standings_signature", False)  # loaded with the phase-split: with_standings_hints()
    if known is False:
        current = StandingsState.objects.filter(phase_split=ps, signature=signature).exists()
    else:
        current = known == signature
    if current:
        return rules
    with transaction.atomic():
        state = _locked_state(ps)
        if state.signature != signature:  # another reader may have rebuilt it meanwhile
            _rebuild_locked(rules, state, signature)
    return rules


def _rebuild_team(rules: Rules, team_id: int) -> None:
    """Recompute one team's rows; the phase-split's state must be locked and current."""
    Standing.objects.filter(phase_split=rules.phase_split, team_id=team_id).delete()
    _build(rules, [team_id])


def _refresh_team(rules: Rules, team_id: int) -> None:
    with transaction.atomic():
        state = _locked_state(rules.phase_split)  # serialises writers of one phase-split
        signature = rules.signature()
        if state.signature != signature:
            _rebuild_locked(rules, state, signature)
        else:
            _rebuild_team(rules, team_id)


def refresh_team(ps: ChallengePhaseSplit, team_id: int) -> None:
    """Recompute one team's standings on ``ps`` (all of them if the settings changed meanwhile)."""
    _refresh_team(rules_for(ps), team_id)


def is_stale(rules: Rules, public_only: bool, row: dict) -> bool:
    """A standing row (with its submission's ``submission__*`` fields) whose submission no longer
    qualifies for it: changed without the services (the Django admin, say) or by a service that
    changed other submissions than the one it refreshed (select-one unpublishes them)."""
    return (
        row["submission__status"] not in rules.statuses
        or row["submission__is_flagged"]
        or row["submission__ignore_submission"]
        or row["submission__is_baseline"] != row["is_baseline"]
        or (public_only and not (row["submission__is_public"] or row["submission__is_baseline"]))
    )


# ---- placing one submission -------------------------------------------------------------------


@dataclass
class _Split:
    """What placing needs of one phase-split, kept between results (see ``_RULES``)."""

    rules: Rules
    signature: str
    entries: Prepared | None = None  # the submission's eligible entries with their keys (_entries_query)


# Per phase, {phase id: {phase-split id: _Split}}: loading the rules costs two queries, hashing the
# signature and compiling the entries query, on every result. Checked on every use, under the lock:
# the phase's split ids and each split's standings signature (read by the lock's statement) must
# equal the cached ones, else the rules are read again. Equal signatures mean equal rules for
# choosing entries, so a change made by any process (an admin edit, a re-imported bundle, a new host)
# is seen without telling this one.
_RULES: dict[int, dict[int, _Split]] = {}
_RULES_KEPT = 256  # phases; past that the cache starts over (a process rarely serves more)
# Queries that do not depend on the rules, compiled once per database (see assay.server.prepared).
_QUERIES: dict[str, Prepared] = {}
# Stand-ins for the ids a prepared query is run with: no row has a negative id.
PHASE, SPLIT, TEAM, SUBMISSION = -101, -102, -103, -104


def _phase_rules(phase_id: int) -> dict[int, _Split]:
    splits = ChallengePhaseSplit.objects.filter(phase_id=phase_id).select_related("phase__challenge", "leaderboard")
    loaded = {}
    for ps in with_standings_hints(splits.defer(*HEAVY_FIELDS)):
        rules = rules_for(ps)
        loaded[ps.pk] = _Split(rules, rules.signature())
    if len(_RULES) >= _RULES_KEPT:
        _RULES.clear()
    _RULES[phase_id] = loaded
    return loaded


def _query(name: str) -> Prepared:
    """The phase lock and the team's rows: the same SQL for every phase, compiled once."""
    key = f"{connection.alias}:{name}"
    if key not in _QUERIES:
        if name == "lock":
            ids = ChallengePhaseSplit.objects.filter(phase_id=PHASE).order_by().values("phase_id")
            qs = (
                StandingsState.objects.select_for_update(of=("self",))
                .filter(phase_split__phase_id=PHASE)
                .order_by("phase_split_id")
                .annotate(splits=Subquery(ids.annotate(ids=IdList("id")).values("ids")))
                .values_list("phase_split_id", "signature", "splits")
            )
            _QUERIES[key] = Prepared(qs, phase=PHASE)
        else:
            qs = Standing.objects.filter(phase_split_id=SPLIT, team_id=TEAM).values_list(*_ROW)
            _QUERIES[key] = Prepared(qs, split=SPLIT, team=TEAM)
    return _QUERIES[key]


def _lock_phase(phase_id: int) -> dict[int, str | None]:
    """Lock the standings state of every split of the phase, in id order (so writers never deadlock),
    in one statement; each split's standings signature, None where none were ever built."""
    states = _query("lock").rows(phase=phase_id)
    if states:
        split_ids = [int(x) for x in states[0][2].split(",")]
    else:  # nothing built yet on this phase
        split_ids = list(ChallengePhaseSplit.objects.filter(phase_id=phase_id).values_list("pk", flat=True))
    signatures: dict[int, str | None] = dict.fromkeys(split_ids)
    signatures.update((ps_id, signature) for ps_id, signature, _ in states)
    return signatures


_ROW = (
    "id", "label", "audience", "entry_id", "submission_id", "is_baseline", "sort_key", "tie_key", "submitted_at",
    "submission__status", "submission__is_flagged", "submission__ignore_submission", "submission__is_baseline",
    "submission__is_public",
)  # fmt: skip


def _entries_query(rules: Rules) -> Prepared:
    """A submission's entries that may appear on the phase-split, with every sortable label's keys,
    computed by the expressions a rebuild uses."""
    n = len(rules.sortable)
    qs = (
        eligible_entries(rules, False)
        .filter(submission_id=SUBMISSION)
        .order_by()
        .annotate(at=F("submission__submitted_at"), pub=F("submission__is_public"), **_keys(rules))
        .values_list("id", "at", "pub", "submission__is_baseline", *[f"{k}{i}" for i in range(n) for k in ("sk", "tk")])
    )
    return Prepared(qs, submission=SUBMISSION)


def _precedes(rules: Rules, key: tuple, row: dict) -> bool:
    """Whether an entry with ``key`` = (sort key, tie key, submitted at, entry id) takes ``row``'s place:
    the order of :func:`_order`, on the values the rows hold."""
    sk, tk, at, entry = key
    if rules.latest:
        return (at, entry) > (row["submitted_at"], row["entry_id"])
    return (sk, tk, at, entry) < (row["sort_key"], row["tie_key"], row["submitted_at"], row["entry_id"])


def _place(split: _Split, sub: Submission) -> bool | None:
    """Write ``sub``'s rows on the phase-split, when only ``sub`` changed since the team's rows were
    written: its entry (if it may appear) against the team's row per label and audience; whether a row of
    the public audience was written. None, having written nothing, when that cannot be exact and the team
    must be recomputed."""
    rules, team = split.rules, sub.participant_team_id
    rows = [dict(zip(_ROW, r, strict=True)) for r in _query("rows").rows(split=rules.phase_split.pk, team=team)]
    if any(is_stale(rules, r["audience"] == Standing.Audience.PUBLIC, r) for r in rows):
        return None
    if split.entries is None:
        split.entries = _entries_query(rules)
    found = split.entries.rows(submission=sub.pk)
    if len(found) > 1:  # several live entries of one submission: only a rebuild's window picks right
        return None
    mine = [r for r in rows if r["submission_id"] == sub.pk]
    if not found:  # it may not appear: it must hold no row (else its team's next entry takes over)
        return None if mine else False
    entry, at, pub, baseline, *keys = found[0]
    audiences = (Standing.Audience.ALL, Standing.Audience.PUBLIC) if pub or baseline else (Standing.Audience.ALL,)
    # per label: its sort and tie key as a row holds them (_standing's rule); a Standing is built only for a row
    # to insert (most results update a slot or two: building instances for every slot cost more than that)
    held_keys = [
        (INF if sk is None else sk, 0.0 if tk is None else tk) for sk, tk in zip(keys[::2], keys[1::2], strict=True)
    ]
    wanted = {
        (rules.sortable[i], audience): (i, audience) for i in range(len(rules.sortable)) for audience in audiences
    }

    def standing(i: int, audience: int) -> Standing:
        return _standing(rules, i, audience, baseline, (entry, team, sub.pk, *keys[2 * i : 2 * i + 2], at))

    if any(r["entry_id"] != entry or (r["label"], r["audience"]) not in wanted for r in mine):
        return None  # a row it no longer earns (made private, new result): the slot's next entry is unknown
    if baseline:  # its own rows, beside the teams'
        if mine:
            return False if len(mine) == len(wanted) else None
        Standing.objects.bulk_create([standing(*slot) for slot in wanted.values()])
        return True  # a baseline's rows are in both audiences
    slots = {(r["label"], r["audience"]): r for r in rows if not r["is_baseline"]}
    new, better = [], {}
    for slot, (i, audience) in wanted.items():
        held = slots.get(slot)
        if held is None:
            new.append(standing(i, audience))
        elif held["submission_id"] != sub.pk and _precedes(rules, (*held_keys[i], at, entry), held):
            better.setdefault(slot[0], (i, []))[1].append(held["id"])
    insert(new)  # their ids are not needed: the next result reads the team's rows again
    if better:  # every slot taken gets this entry; each label's slots its own keys
        _take_slots({row_id: held_keys[i] for i, ids in better.values() for row_id in ids}, (entry, sub.pk, at))
    public = Standing.Audience.PUBLIC
    return any(s.audience == public for s in new) or any(
        slots[(label, public)]["id"] in ids for label, (_, ids) in better.items() if (label, public) in slots
    )


_TAKE: dict[tuple[str, int], str] = {}


def _take_slots(keys: dict[int, tuple[float, float]], values: tuple) -> None:
    """Give the rows ``keys`` names (ids) the entry, submission and time in ``values`` and each its (sort key,
    tie key): the ORM's ``update()`` per label as one ``UPDATE`` built once per database and number of rows (the
    ORM compiling it cost more than the database running it, on most results; a result takes a slot per label)."""
    key = (connection.alias, len(keys))
    if key not in _TAKE:
        qn, column = connection.ops.quote_name, (lambda name: qn(Standing._meta.get_field(name).column))
        by_id = " ".join(["WHEN %s THEN %s"] * len(keys))
        _TAKE[key] = (
            f"UPDATE {qn(Standing._meta.db_table)} SET {column('entry_id')} = %s, {column('submission_id')} = %s,"
            f" {column('submitted_at')} = %s, {column('sort_key')} = CASE {qn('id')} {by_id} END,"
            f" {column('tie_key')} = CASE {qn('id')} {by_id} END WHERE {qn('id')} IN ({', '.join(['%s'] * len(keys))})"
        )
    entry, submission, at = values
    at = Standing._meta.get_field("submitted_at").get_db_prep_save(at, connection)
    sort_keys = [p for row_id, (sk, _) in keys.items() for p in (row_id, float(sk))]
    tie_keys = [p for row_id, (_, tk) in keys.items() for p in (row_id, float(tk))]
    write(connection, _TAKE[key], [entry, submission, at, *sort_keys, *tie_keys, *keys])


def refresh_submission(sub: Submission) -> None:
    """After ``sub``'s results, status or marks changed (and no other submission's, but for what
    :func:`is_stale` sees): bring its team's standings up to date on each split of its phase."""
    team = sub.participant_team_id
    with transaction.atomic(savepoint=False):  # the callers' transaction; no savepoint to pay for
        signatures = _lock_phase(sub.phase_id)
        shown: list[int] = []  # phase-splits whose public rows may have changed
        cached = _RULES.get(sub.phase_id)
        if cached is None or {k: v.signature for k, v in cached.items()} != signatures:
            cached = _phase_rules(sub.phase_id)  # another process changed them, or new standings
        for ps_id, split in sorted(cached.items()):
            if signatures.get(ps_id) != split.signature:
                _refresh_team(split.rules, team)  # builds them (none yet) or rebuilds them (settings changed)
            elif (placed := _place(split, sub)) is None:
                _rebuild_team(split.rules, team)
            elif not placed:
                continue  # no public row written: what the public sees is as it was
            shown.append(ps_id)
        if shown:
            signals.standings_changed.send(sender=Standing, phase_id=sub.phase_id, phase_split_ids=tuple(shown))
