"""Creating, checking and revoking personal API tokens (the model is accounts.ApiToken).

One token type for every client (assay CLI, evalai CLI, scripts): ``ap_`` + 43 random characters,
hashed at rest, with an expiry and a revocation date, so a refusal can always say which it was.
The evalai CLI's token is the one exception to "random": see :func:`evalai_cli_token`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.crypto import salted_hmac

from assay.server.refusals import Refusal
from assay.server.row_cache import RowCache

from .models import ApiToken
from .services import unverified_email_refusal

TOKEN_PREFIX = "ap_"
DEFAULT_DAYS = 365
MAX_DAYS = 3650
EVALAI_CLI_NAME = "evalai CLI"


def live_token_cap() -> int:
    """How many live (unrevoked, unexpired) tokens one account may hold: ``ASSAY_MAX_TOKENS_PER_USER``."""
    return settings.API_TOKENS_PER_USER


def evalai_cli_days() -> int:
    """The evalai CLI token's lifetime (EvalAI's is 365 days; ours is shorter): ``ASSAY_EVALAI_TOKEN_DAYS``."""
    return settings.EVALAI_TOKEN_DAYS


class TokenRefused(Refusal):
    """A token request the rules refuse (unverified address, too many tokens, not yours)."""


@dataclass
class Check:
    """The outcome of looking a token up: the row when usable, else why not (``unknown|expired|revoked``)."""

    row: ApiToken | None
    problem: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user, name: str, days: int | None = DEFAULT_DAYS, *, sign_in: bool = False) -> tuple[ApiToken, str]:
    """Return the row and the token (shown once). ``days=None`` or 0 means no expiry.

    At the cap on live tokens, a token asked for by name is refused (the user picks which to revoke);
    one made by signing in (``sign_in=True``: ``assay login``, ``evalai login``) revokes the least
    recently used instead, so signing in always works and repeated logins cannot pile tokens up.
    """
    return _create(user, name, days, TOKEN_PREFIX + secrets.token_urlsafe(32), sign_in=sign_in)


def evalai_cli_token(user) -> tuple[ApiToken, str]:
    """The user's evalai CLI token: the same one on every call, as EvalAI's ``get_auth_token`` answers.

    Only hashes are stored, so the token is derived instead: an HMAC (under the server's secret key) of
    the user and a nonce kept in the row's ``prefix``. The server can recompute it; a copy of the
    database alone cannot. Revoked or expired (or a changed secret key): the next call makes a new one.
    """
    for row in live_tokens(user).filter(name=EVALAI_CLI_NAME).order_by("-created_at", "-id"):
        token = _derived(user, row.prefix[len(TOKEN_PREFIX) :])
        if secrets.compare_digest(_hash(token), row.token_hash):
            return row, token
    return _create(user, EVALAI_CLI_NAME, evalai_cli_days(), _derived(user, secrets.token_urlsafe(8)[:7]), sign_in=True)


def _derived(user, nonce: str) -> str:
    mac = salted_hmac("assay.accounts.evalai_cli_token", f"{user.pk}:{nonce}", algorithm="sha256").digest()
    return TOKEN_PREFIX + nonce + base64.urlsafe_b64encode(mac).decode().rstrip("=")[:36]


def live_tokens(user):
    now = timezone.now()
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def _create(user, name: str, days: int | None, token: str, *, sign_in: bool) -> tuple[ApiToken, str]:
    if reason := unverified_email_refusal(user, "get an API token"):
        raise TokenRefused("email_unverified", reason, 403)
    if days is not None and not 0 <= days <= MAX_DAYS:
        raise TokenRefused("bad_expiry", f"a token lives between 1 and {MAX_DAYS} days (0 = never expires)")
    cap = live_token_cap()
    with transaction.atomic():
        # one creation per user at a time, so two at once cannot both slip under the cap
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        live = live_tokens(user)
        over = live.count() + 1 - cap
        if over > 0 and not sign_in:
            raise TokenRefused(
                "too_many_tokens",
                f"you already have {cap} live API tokens, the most one account may hold; revoke one you no "
                "longer use (on your tokens page, or DELETE /api/v1/tokens/{id}) and try again",
                409,
            )
        if over > 0:
            stale = live.order_by(Coalesce("last_used_at", "created_at"), "id").values_list("pk", flat=True)[:over]
            ApiToken.objects.filter(pk__in=list(stale)).update(revoked_at=timezone.now())
            _cache.clear()  # a queryset update sends no signal
        expires = timezone.now() + dt.timedelta(days=days) if days else None
        row = ApiToken.objects.create(
            user=user, name=(name or "token")[:100], token_hash=_hash(token), prefix=token[:10], expires_at=expires
        )
    return row, token


_cache: RowCache[ApiToken] = RowCache(lambda: settings.TOKEN_CACHE_SECONDS, related=("user",))
for _model in (ApiToken, get_user_model()):  # a revocation, or a user deactivated, counts at once here
    post_save.connect(_cache.clear, sender=_model, dispatch_uid=f"api-token-cache-save-{_model.__name__}")
    post_delete.connect(_cache.clear, sender=_model, dispatch_uid=f"api-token-cache-delete-{_model.__name__}")


def check_token(token: str) -> Check:
    """The token's row with its user (one query, then cached: :mod:`assay.server.row_cache`), or why not."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return Check(None, "unknown")
    now = timezone.now()
    digest = _hash(token)
    row = _cache.get(digest)
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        stamp = _cache.stamp()
        row = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
        if row is None or not row.user.is_active:
            return Check(None, "unknown")
        if row.revoked_at is not None:
            return Check(None, "revoked")
        if row.expires_at is not None and row.expires_at <= now:
            return Check(None, "expired")
        _cache.put(digest, row, stamp)
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        _cache.touched(digest, "last_used_at", now)
    return Check(row)


def revoke_token(user, row: ApiToken) -> ApiToken:
    if row.user_id != user.pk and not user.is_staff:
        raise TokenRefused("not_found", "no such token", 404)
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
    return row
