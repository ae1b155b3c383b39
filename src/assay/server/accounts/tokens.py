"""Creating, checking and revoking personal API tokens (the model is accounts.ApiToken).

One token type for every client (assay CLI, evalai CLI, scripts): ``ap_`` + 43 random characters,
hashed at rest, with an expiry and a revocation date, so a refusal can always say which it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.utils import timezone

from .models import ApiToken

TOKEN_PREFIX = "ap_"
DEFAULT_DAYS = 365
MAX_DAYS = 3650
MAX_TOKENS_PER_USER = 100


class TokenRefused(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Check:
    """The outcome of looking a token up: the row when usable, else why not (``unknown|expired|revoked``)."""

    row: ApiToken | None
    problem: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user, name: str, days: int | None = DEFAULT_DAYS) -> tuple[ApiToken, str]:
    """Return the row and the token (shown once). ``days=None`` or 0 means no expiry."""
    if days is not None and not 0 <= days <= MAX_DAYS:
        raise TokenRefused("bad_expiry", f"a token lives between 1 and {MAX_DAYS} days (0 = never expires)")
    active = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if active.count() >= MAX_TOKENS_PER_USER:
        raise TokenRefused("too_many_tokens", f"you have {MAX_TOKENS_PER_USER} active tokens; revoke some first", 409)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = timezone.now() + dt.timedelta(days=days) if days else None
    row = ApiToken.objects.create(
        user=user, name=(name or "token")[:100], token_hash=_hash(token), prefix=token[:10], expires_at=expires
    )
    return row, token


def check_token(token: str) -> Check:
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return Check(None, "unknown")
    row = ApiToken.objects.select_related("user").filter(token_hash=_hash(token)).first()
    if row is None or not row.user.is_active:
        return Check(None, "unknown")
    if row.revoked_at is not None:
        return Check(None, "revoked")
    now = timezone.now()
    if row.expires_at is not None and row.expires_at <= now:
        return Check(None, "expired")
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return Check(row)


def revoke_token(user, row: ApiToken) -> ApiToken:
    if row.user_id != user.pk and not user.is_staff:
        raise TokenRefused("not_found", "no such token", 404)
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
    return row
