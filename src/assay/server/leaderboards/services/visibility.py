"""Who may read a phase-split's leaderboard, and what they see of it.

* Hosts of the challenge (and staff) see everything: by default what the public sees on a public
  leaderboard (public submissions only), every submission on a hidden one; ``entries=all`` always.
* Everyone else needs the challenge to be listed (published, approved, enabled) and the phase to be
  public (``phase.is_public``); otherwise the leaderboard does not exist for them (404).
* The phase-split's visibility then decides — ``3`` public: the ranking of public submissions, with
  the reader's own team marked; ``2`` submitting team and hosts: a team sees only its own row (its best
  or latest entry, private submissions included, with scores but **no rank**: a rank would tell how
  the teams it cannot see did);
  ``1`` hosts only. ``reveal_at`` (Assay) turns a phase-split into 3 from that date on.
* As in EvalAI (``reference/evalai.md`` §4.2), the phase-split's visibility alone decides: a phase's
  ``leaderboard_public`` only sets its submissions' default public flag (``submissions.services.submit``),
  so a phase with ``leaderboard_public: false`` and a split of visibility 3 shows the split's leaderboard,
  ranking whichever submissions are public.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from assay.server.challenges.models import ChallengePhaseSplit
from assay.server.challenges.services.listing import challenge_listed, effective_visibility
from assay.server.challenges.services.roles import is_host, participation_of

from .errors import LeaderboardError

Level = Literal["host", "public", "own"]
V = ChallengePhaseSplit.Visibility


@dataclass(frozen=True)
class Access:
    """What one reader may see of one phase-split."""

    level: Level
    visibility: int  # what participants get now: 1, 2 or 3 (reveal_at applied)
    team_id: int | None  # the reader's team in this challenge, if any (not looked up for hosts)
    public_only: bool  # rows chosen among public submissions only

    @property
    def is_host(self) -> bool:
        return self.level == "host"

    @property
    def shows_ranks(self) -> bool:
        return self.level != "own"


def access_for(user, ps: ChallengePhaseSplit, entries: str | None = None, now: dt.datetime | None = None) -> Access:
    """Decide what ``user`` sees of ``ps``; raises :class:`LeaderboardError` (404, 403, or 401 to the
    anonymous) when nothing.

    ``entries`` is ``"public"`` or ``"all"`` (hosts only); None takes the default for the reader.
    """
    if entries not in (None, "public", "all"):
        raise LeaderboardError("bad_entries", "entries must be 'public' or 'all'", 400)
    phase = ps.phase
    challenge = phase.challenge
    visibility = effective_visibility(ps, now)
    if is_host(user, challenge):
        public_only = visibility == V.PUBLIC if entries is None else entries == "public"
        return Access("host", visibility, None, public_only)
    if not challenge_listed(challenge) or not phase.is_public:
        raise LeaderboardError("not_found", "no such leaderboard", 404)
    participation = participation_of(user, challenge)
    team_id = participation.team_id if participation else None
    if entries == "all":
        raise LeaderboardError("forbidden", "only the challenge's hosts see every entry", 403)
    if visibility == V.PUBLIC:
        return Access("public", visibility, team_id, True)
    if visibility == V.OWNER_AND_HOST and team_id is not None:
        if entries == "public":
            raise LeaderboardError("forbidden", "this leaderboard is not public: your team sees its own rows", 403)
        return Access("own", visibility, team_id, False)
    who = "the hosts and each team (its own rows)" if visibility == V.OWNER_AND_HOST else "the hosts"
    status = 403 if getattr(user, "is_authenticated", False) else 401  # signed in, a host would see it
    raise LeaderboardError("leaderboard_not_public", f"this leaderboard is not public: only {who} may see it", status)
