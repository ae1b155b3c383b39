"""Rank aggregation (Assay extension ``schema.rank_aggregation``): one overall column from several labels
and dataset splits, as Grand Challenge does (``reference/peers.md`` §2.4).

* ``mean_rank`` / ``median_rank``: each row gets a competition rank per (split, label) — the label's
  own direction, a missing value ranking last — and the overall value is their mean or median
  (lower is better);
* ``weighted_sum``: Σ weight × value over the (split, label) pairs (higher is better unless
  ``sort_ascending``); a row missing any of them has no overall value and ranks last.

It is computed over the rows of the leaderboard as shown — each team's entry for the sort label plus
the baselines — so every number on a row comes from the same submission; a split other than the
shown one contributes that same submission's entry there. Baselines get a value but no rank, and
do not push teams down. The column is withheld from a reader who may not see every split it draws
on, since it would leak those results. The work is bounded by the number of teams, not of entries.
"""

from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass, field

from django.db.models import QuerySet

from assay.server.challenges.models import ChallengePhaseSplit

from ..models import LeaderboardEntry, Standing
from .errors import LeaderboardError
from .rules import Rules
from .visibility import access_for


@dataclass
class Overall:
    """The overall column for every visible row, keyed by standing id."""

    hidden: str | None = None
    values: dict[int, float | None] = field(default_factory=dict)
    ranks: dict[int, int | None] = field(default_factory=dict)
    ordered: list[int] = field(default_factory=list)

    def value(self, standing_id: int) -> float | None:
        return self.values.get(standing_id)

    def rank(self, standing_id: int) -> int | None:
        return self.ranks.get(standing_id)

    def order(self) -> list[int]:
        return self.ordered


def _competition_ranks(keys: list[float], ranked: list[float]) -> list[int]:
    """1 + how many ranked keys are strictly smaller, for each key (ties share; inf = missing = last)."""
    ordered = sorted(ranked)
    return [bisect.bisect_left(ordered, k) + 1 for k in keys]


def _splits(user, rules: Rules, access_level: str) -> tuple[list[ChallengePhaseSplit | None], str | None]:
    """The phase-splits the column draws on (None = the shown one) and why a reader may not see it."""
    ps = rules.phase_split
    wanted = list((rules.aggregation or {}).get("splits") or []) or [ps.dataset_split.codename]
    out: list[ChallengePhaseSplit | None] = []
    for codename in wanted:
        if codename == ps.dataset_split.codename:
            out.append(None)
            continue
        other = (
            ChallengePhaseSplit.objects.select_related("phase__challenge", "leaderboard")
            .filter(phase_id=ps.phase_id, leaderboard_id=ps.leaderboard_id, dataset_split__codename=codename)
            .first()
        )
        if other is None:
            continue  # a shared leaderboard: the dev phase may lack the test phase's private split
        if access_level != "host":
            try:
                seen = access_for(user, other)
            except LeaderboardError:
                seen = None
            if seen is None or seen.level != "public":
                return [], f"the overall column draws on split {codename!r}, which you cannot see"
        out.append(other)
    return out, None


def overall_column(user, rules: Rules, access, qs: QuerySet[Standing]) -> Overall:
    agg = rules.aggregation or {}
    splits, hidden = _splits(user, rules, access.level)
    if hidden:
        return Overall(hidden=hidden)
    labels = [x for x in (agg.get("labels") or rules.labels) if x in rules.labels]
    rows = list(
        qs.values_list("id", "submission_id", "is_baseline", "entry__result", "sort_key", "tie_key", "submitted_at")
    )
    results: list[dict[int, dict]] = []
    for other in splits:
        if other is None:
            results.append({sub: res or {} for _, sub, _, res, *_ in rows})
        else:
            results.append(
                dict(
                    LeaderboardEntry.objects.filter(
                        phase_split=other, is_disabled=False, submission_id__in=qs.values("submission_id")
                    ).values_list("submission_id", "result")
                )
            )
    ranked_rows = [r for r in rows if not r[2]]
    method = agg.get("method")
    per_row: list[list[float | None]] = [[] for _ in rows]
    for by_sub in results:
        for label in labels:
            raw = [_num((by_sub.get(r[1]) or {}).get(label)) for r in rows]
            if method == "weighted_sum":
                weight = float((agg.get("weights") or {}).get(label, 1.0))
                for i, v in enumerate(raw):
                    per_row[i].append(None if v is None else weight * v)
                continue
            sign = 1.0 if rules.ascending[label] else -1.0
            keys = [math.inf if v is None else sign * v for v in raw]
            ranked_keys = [k for k, r in zip(keys, rows, strict=True) if not r[2]]
            for i, rank in enumerate(_competition_ranks(keys, ranked_keys)):
                per_row[i].append(float(rank))
    values: dict[int, float | None] = {}
    for row, parts in zip(rows, per_row, strict=True):
        if not parts or any(p is None for p in parts):
            values[row[0]] = None
        elif method == "weighted_sum":
            values[row[0]] = float(sum(parts))
        elif method == "median_rank":
            values[row[0]] = float(statistics.median(parts))
        else:
            values[row[0]] = float(statistics.fmean(parts))
    higher_first = method == "weighted_sum" and not agg.get("sort_ascending")

    def key(standing_id: int) -> float:
        v = values[standing_id]
        return math.inf if v is None else (-v if higher_first else v)

    ranks = _competition_ranks([key(r[0]) for r in rows], [key(r[0]) for r in ranked_rows])
    overall = Overall(values=values)
    overall.ranks = {r[0]: (None if r[2] else rank) for r, rank in zip(rows, ranks, strict=True)}
    # ties on the overall value keep the leaderboard's own order (sort label, error bar, time)
    overall.ordered = [r[0] for r in sorted(rows, key=lambda r: (key(r[0]), r[4], r[5], r[6], r[0]))]
    return overall


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
