"""``leaderboard.changed``: a public leaderboard shows something new (a best entry, a hidden or unhidden one, a
baseline, a re-ranking), told to the challenge's webhooks that want it.

The leaderboards announce every change of standings (``leaderboards.signals.standings_changed``, in the writer's
transaction). The receiver writes nothing unless a webhook of the challenge wants the event (``listeners``: no
query), and then one task per phase-split, keyed by it and delayed by :data:`COALESCE_SECONDS`: the results of a
burst make one task (``tasks.enqueue(key=…)``). Its handler reads the board as an anonymous reader may
(``leaderboards.services.ranking.leaderboard`` with ``AnonymousUser``: the leaderboards' own visibility rule, so a
private or hosts-only leaderboard, a split not yet revealed, an unlisted challenge or a phase that is not public
make no event), compares it with the board of the last event (:class:`~..models.BoardSnapshot`) and, if a row
differs, queues one signed delivery per webhook carrying only the rows that changed. What a host alone sees
(private submissions, hidden splits, scores a board hides) is never read, so never sent.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from assay.server import tasks
from assay.server.challenges.services.read_versions import challenge_of_phase, challenge_of_split
from assay.server.leaderboards.services.errors import LeaderboardError
from assay.server.leaderboards.services.ranking import Board, leaderboard

from ..models import BoardSnapshot, Webhook
from . import listeners
from .links import absolute
from .webhooks import DELIVER

EVENT = Webhook.Event.LEADERBOARD_CHANGED.value
ANNOUNCE = "notifications.leaderboard"
COALESCE_SECONDS = 1.0  # results within this of the first one share its event
MAX_ENTRIES = 100  # changed rows per event; beyond, ``truncated`` (the first event of a board lists all of it)


def on_standings_changed(sender, *, phase_id: int, phase_split_ids: tuple[int, ...], **kwargs) -> None:
    """``leaderboards.signals.standings_changed``: one waiting task per phase-split, if anyone listens."""
    challenge_id = challenge_of_phase(phase_id)
    if challenge_id is None or not listeners.current().wants(challenge_id, EVENT):
        return
    for ps_id in phase_split_ids:
        tasks.enqueue(ANNOUNCE, {"phase_split": ps_id}, delay=COALESCE_SECONDS, key=f"{ANNOUNCE}:{ps_id}")


@tasks.handler(ANNOUNCE)
def announce(payload: dict) -> None:
    ps_id = int(payload["phase_split"])
    challenge_id = challenge_of_split(ps_id)
    if challenge_id is None:
        return  # the phase-split is gone
    hooks = [h for h in Webhook.objects.filter(challenge_id=challenge_id, active=True) if EVENT in h.events]
    if not hooks:
        return  # no one listens any more: the next event compares with the last one sent
    with transaction.atomic():
        # one announcer per board at a time (SQLite: the transaction's write lock; PostgreSQL: the row lock),
        # so two runs of a burst's tasks never both send the same change
        locked = BoardSnapshot.objects.select_for_update().filter(phase_split_id=ps_id)
        snapshot = locked.first()
        board = public_board(ps_id)
        if board is None:
            return  # not public (now): no event, and the snapshot stays as the public last saw it
        if snapshot is None:  # the board's first event (at worst, two first runs on PostgreSQL both send it)
            snapshot = BoardSnapshot.objects.get_or_create(phase_split_id=ps_id)[0]
        rows = board_rows(board)
        entries = changes(snapshot.rows, rows)
        if not entries:
            return  # what the public sees did not change (a private submission, a team's worse result)
        snapshot.rows = rows
        snapshot.save(update_fields=["rows", "updated_at"])
        data = event_data(board, entries)
        occurred_at = timezone.now().isoformat()
        for hook in hooks:
            tasks.enqueue(
                DELIVER,
                {
                    "webhook": hook.pk,
                    "event": EVENT,
                    "delivery": str(uuid.uuid4()),
                    "occurred_at": occurred_at,
                    "data": data,
                },
                max_attempts=int(getattr(settings, "WEBHOOKS_MAX_ATTEMPTS", 8)),
            )


def public_board(ps_id: int) -> Board | None:
    """The whole board as an anonymous reader sees it, or None when such a reader may not see it."""
    try:
        return leaderboard(AnonymousUser(), ps_id, everything=True)
    except LeaderboardError:
        return None


def board_rows(board: Board) -> dict[str, dict[str, Any]]:
    """What each row shows an anonymous reader, by a key that stays with the row's team (or baseline entry)."""
    out = {}
    for row in board.rows:
        key = f"baseline:{row['entry']}" if row["is_baseline"] else f"team:{row['team']['id']}"
        item = {
            "team": {"id": row["team"]["id"], "name": row["team"]["name"]},
            "rank": row["rank"],
            "is_baseline": row["is_baseline"],
            "submission": row["submission"]["id"],
        }
        if "scores" in row:  # absent when the board hides scores from participants
            item["scores"] = row["scores"]
        out[key] = item
    return out


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "team"}  # a renamed team alone is no change of standings


def changes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that differ between two boards, ranked first, then the rows that left it."""
    out = []
    for key, item in after.items():
        old = before.get(key)
        if old is None or _shown(old) != _shown(item):
            out.append({**item, "previous_rank": old["rank"] if old else None, "removed": False})
    out.sort(key=lambda e: (e["rank"] is None, e["rank"] or 0))
    for key in sorted(before.keys() - after.keys()):
        old = before[key]
        out.append(
            {
                "team": old["team"],
                "rank": None,
                "is_baseline": old["is_baseline"],
                "submission": None,
                "previous_rank": old["rank"],
                "removed": True,
            }
        )
    return out


def event_data(board: Board, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The event's body but for its id, name and time: read from the public board only."""
    ps = board.phase_split
    phase, challenge = ps.phase, ps.phase.challenge
    return {
        "challenge": {"id": challenge.pk, "title": challenge.title},
        "phase": {"id": phase.pk, "codename": phase.codename},
        "split": {"id": ps.pk, "codename": ps.dataset_split.codename},
        "leaderboard": {
            "order_by": board.order_by,
            "rows": board.count,
            "url": f"{absolute('web:leaderboard', challenge.pk)}?split={ps.pk}",
        },
        "entries": entries[:MAX_ENTRIES],
        "truncated": len(entries) > MAX_ENTRIES,
    }
