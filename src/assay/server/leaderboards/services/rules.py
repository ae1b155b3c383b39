"""What a phase-split's settings mean for ranking: sort labels, directions, best or latest, who is left out.

One place decides these, so the standings, the page, the history and the exports cannot disagree.

Direction (``reference/evalai.md`` §1.4, §4.2): the phase-split's ``is_leaderboard_order_descending``,
unless the label's metadata sets ``sort_ascending``. EvalAI also sorts a label *ascending* when its
metadata exists without ``sort_ascending`` (``descending = sort_ascending is False``); Assay does not
follow that quirk — a label whose metadata only carries a description keeps the phase-split's order,
which is what the host wrote and what the bundle reader announces (warning ``sort_ascending_missing``:
"the phase-split's order applies").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Aggregate, CharField, OuterRef, QuerySet, Subquery

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.submissions.models import Submission
from assay.server.teams.models import HostTeamMember

from ..models import StandingsState

# The pseudo-label of the rank-aggregation column in ``?order_by=`` (real labels win if one is named so).
OVERALL = "_overall"
# Bump when the way standings are chosen changes: every phase-split is then rebuilt on its next use.
STANDINGS_VERSION = 1

S = Submission.Status
# Page texts and the stored config: large, and no ranking rule reads them (left out when loading a phase-split).
HEAVY_FIELDS = (
    "phase__challenge__description", "phase__challenge__evaluation_details",
    "phase__challenge__terms_and_conditions", "phase__challenge__submission_guidelines",
    "phase__challenge__config_yaml", "phase__challenge__infrastructure", "phase__description",
    "phase__submission_meta_attributes", "phase__default_submission_meta_attributes",
)  # fmt: skip


@dataclass(frozen=True)
class Rules:
    """The ranking rules of one phase-split, read from its settings, its phase and its leaderboard."""

    phase_split: ChallengePhaseSplit
    labels: tuple[str, ...]
    default_order_by: str
    ascending: dict[str, bool]
    sortable: tuple[str, ...]
    latest: bool
    statuses: tuple[str, ...]
    exclude_host_submissions: bool
    host_user_ids: tuple[int, ...]
    aggregation: dict[str, Any] | None = field(default=None)

    @property
    def default_sort(self) -> str:
        """What the leaderboard is sorted by when the reader asks for nothing."""
        if self.aggregation and self.aggregation.get("sort_by_default"):
            return OVERALL
        return self.default_order_by

    def signature(self) -> str:
        """Everything that decides which entry stands for a team; standings built for another are stale."""
        payload = {
            "v": STANDINGS_VERSION,
            "sortable": [[label, self.ascending[label]] for label in self.sortable],
            "latest": self.latest,
            "statuses": list(self.statuses),
            "exclude_host": self.exclude_host_submissions,
            "hosts": list(self.host_user_ids) if self.exclude_host_submissions else [],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class IdList(Aggregate):
    """The ids of a group as one text, ``"3,7"`` (order unspecified), on SQLite and PostgreSQL."""

    function = "GROUP_CONCAT"
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, function="STRING_AGG", template="%(function)s(%(expressions)s::text, ',')"
        )


def with_standings_hints(qs: QuerySet[ChallengePhaseSplit]) -> QuerySet[ChallengePhaseSplit]:
    """Load, with each phase-split, what :func:`rules_for` and ``ensure_current`` would otherwise ask the
    database for on every read — the host team's members and the standings' signature — in one query."""
    hosts = (
        HostTeamMember.objects.filter(team_id=OuterRef("phase__challenge__host_team_id"))
        .order_by()
        .values("team_id")
        .annotate(ids=IdList("user_id"))
        .values("ids")
    )
    signature = StandingsState.objects.filter(phase_split=OuterRef("pk")).values("signature")[:1]
    return qs.annotate(host_user_ids=Subquery(hosts), standings_signature=Subquery(signature))


def label_ascending(schema: dict, ps: ChallengePhaseSplit, label: str) -> bool:
    """True when lower values of ``label`` rank first on ``ps`` (see the module docstring)."""
    meta = (schema.get("metadata") or {}).get(label) or {}
    explicit = meta.get("sort_ascending") if isinstance(meta, dict) else None
    if explicit is None:
        return not ps.is_leaderboard_order_descending
    return bool(explicit)


def rules_for(ps: ChallengePhaseSplit) -> Rules:
    """``ps`` should come with ``phase__challenge`` and ``leaderboard`` selected."""
    schema = ps.leaderboard.schema or {}
    labels = tuple(str(label) for label in schema.get("labels") or [])
    default = str(schema.get("default_order_by") or "")
    if default not in labels and labels:
        default = labels[0]
    phase = ps.phase
    statuses = (S.FINISHED, S.PARTIALLY_EVALUATED) if phase.is_partial_submission_evaluation_enabled else (S.FINISHED,)
    # EvalAI: in a public phase, what the host team's members submit stays off the board unless it is a baseline.
    host_ids: tuple[int, ...] = ()
    if phase.is_public:
        preloaded = getattr(ps, "host_user_ids", False)  # see with_standings_hints()
        if preloaded is not False:
            host_ids = tuple(sorted(int(x) for x in (preloaded or "").split(",") if x))
        else:
            members = HostTeamMember.objects.filter(team_id=phase.challenge.host_team_id)
            host_ids = tuple(sorted(members.values_list("user_id", flat=True)))
    aggregation = schema.get("rank_aggregation")
    return Rules(
        phase_split=ps,
        labels=labels,
        default_order_by=default,
        ascending={label: label_ascending(schema, ps, label) for label in labels},
        sortable=labels if ps.is_multi_metric_leaderboard else tuple(x for x in labels if x == default),
        latest=ps.show_leaderboard_by_latest_submission,
        statuses=tuple(str(s) for s in statuses),
        exclude_host_submissions=phase.is_public,
        host_user_ids=host_ids,
        aggregation=aggregation if isinstance(aggregation, dict) else None,
    )
