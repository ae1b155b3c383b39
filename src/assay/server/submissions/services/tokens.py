"""Worker tokens: created by admins (platform queue) or a remote challenge's hosts, stored hashed."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from assay.server.challenges.models import Challenge
from assay.server.challenges.services.roles import is_host
from assay.server.row_cache import RowCache

from ..models import WorkerToken
from .errors import SubmissionError

TOKEN_PREFIX = "aw_"
PLATFORM_QUEUE = "default"
REMOTE_QUEUE_PREFIX = "challenge-"


def queue_name(challenge: Challenge) -> str:
    """A challenge's queue: its own for remote evaluation (served by the host's workers), else the platform's."""
    return remote_queue_name(challenge) if challenge.remote_evaluation else PLATFORM_QUEUE


def remote_queue_name(challenge: Challenge) -> str:
    """The queue a remote-evaluation challenge's own workers serve."""
    return f"{REMOTE_QUEUE_PREFIX}{challenge.pk}"


def challenge_id_of_queue(name: str) -> int | None:
    """The challenge id a remote queue's name carries (:func:`remote_queue_name` read back), or None."""
    prefix, _, pk = name.rpartition("-")
    return int(pk) if prefix + "-" == REMOTE_QUEUE_PREFIX and pk.isdigit() else None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token_maker(user, challenge: Challenge | None) -> None:
    """Who creates worker tokens: staff the platform's, a challenge's hosts its own (asked before the
    request's body is read, so a stranger is refused the same whatever it sent)."""
    if challenge is None:
        if user is not None and not user.is_staff:
            raise SubmissionError("forbidden", "only administrators create platform worker tokens", 403)
    elif user is not None and not is_host(user, challenge):
        raise SubmissionError("forbidden", "only the challenge's hosts create its worker tokens", 403)


def create_worker_token(user, name: str, challenge: Challenge | None = None) -> tuple[WorkerToken, str]:
    """Return the row and the token itself (shown once; only its hash is kept).

    ``user`` is None only for the server's own operator commands (``assay admin worker-token``, the
    demo's in-process worker), which run with the server's authority.
    """
    check_token_maker(user, challenge)
    if challenge is None:
        queue = PLATFORM_QUEUE
    else:
        if not challenge.remote_evaluation:
            raise SubmissionError(
                "not_remote", "this challenge is evaluated by the platform; it has no remote queue", 400
            )
        queue = remote_queue_name(challenge)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = WorkerToken.objects.create(
        name=name[:100] or "worker",
        queue_name=queue,
        challenge=challenge,
        token_hash=_hash(token),
        prefix=token[:10],
        created_by=user,
    )
    return row, token


_cache: RowCache[WorkerToken] = RowCache(lambda: settings.TOKEN_CACHE_SECONDS)
for _signal in (post_save, post_delete):  # a revocation (or any change) in this process counts at once
    _signal.connect(_cache.clear, sender=WorkerToken, dispatch_uid=f"worker-token-cache-{_signal is post_save}")


def authenticate_worker(token: str) -> WorkerToken | None:
    """The active token row for ``token`` (one query, then cached: :mod:`assay.server.row_cache`), or
    None. Touches ``last_used_at`` at most once a minute."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _hash(token)
    row = _cache.get(digest)
    if row is None:
        stamp = _cache.stamp()
        row = WorkerToken.objects.filter(token_hash=digest, revoked_at__isnull=True).first()
        if row is None:
            return None
        _cache.put(digest, row, stamp)
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        WorkerToken.objects.filter(pk=row.pk).update(last_used_at=now)
        _cache.touched(digest, "last_used_at", now)
    return row


def forget_cached_tokens() -> None:
    """After revoking tokens with a queryset update (no signal is sent): the cache must not outlive them."""
    _cache.clear()


def revoke_worker_token(user, row: WorkerToken) -> None:
    """Its challenge's hosts and staff revoke a token; to anyone else it does not exist (404, as a missing
    id answers: the ids of other people's tokens are not told apart from unused ones)."""
    allowed = user is None or user.is_staff or (row.challenge is not None and is_host(user, row.challenge))
    if not allowed:
        raise SubmissionError("not_found", "no such token", 404)
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
