"""Per-account sign-in limit: after N failed password checks for one account within a window, from any
address, that account's password checks are refused for a while, the right password included.

The per-address throttles (``ASSAY_LOGIN_RATE`` on the API, allauth's on the website) stop one client;
this stops many clients guessing one account's password. One rule for every door that takes a password:
the website's form (``accounts.adapter``), ``POST /api/v1/auth/login`` and EvalAI's
``auth/get-auth-token``. Settings: ``LOGIN_ACCOUNT_LIMIT`` (``ASSAY_LOGIN_ACCOUNT_LIMIT`` and
``ASSAY_LOGIN_ACCOUNT_LOCK``, see ``accounts.config``).

The tradeoff: anyone who knows a user name can keep that account locked by failing on purpose, so the
lock is short and bounded (it ends ``lock`` seconds after the N-th failure; failures during a lock are not
counted, so they do not extend it); sessions and API tokens keep working, and an operator who prefers no
lock sets ``ASSAY_LOGIN_ACCOUNT_LIMIT=off`` and relies on the per-address limits. A name that is no
account is counted the same way, so the answers do not tell which names exist.

Counts live in the shared cache (settings ``CACHES``: every server process sees them). They are read and
written without a lock, as DRF's throttles are: failures racing in parallel may be under-counted by the
number in flight, which the per-address limit bounds.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.cache import cache

from assay.server.refusals import Refusal

PREFIX = "assay:login-account"


class AccountLocked(Refusal):
    """Too many failed sign-ins to this account; ``retry_after``: seconds until the lock ends."""

    status_default = 429

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            "account_locked",
            f"too many failed sign-ins to this account: password sign-in is locked for {minutes} more minute"
            + ("s" if minutes != 1 else ""),
        )
        self.retry_after = retry_after


def account_key(identifier: str) -> str:
    """One key per account, whether it is named by user name or e-mail (else per name, hashed)."""
    ident = (identifier or "").strip().lower()
    users = get_user_model().objects
    pk = users.filter(username__iexact=ident).values_list("pk", flat=True).first()
    if pk is None and "@" in ident:
        from allauth.account.models import EmailAddress

        pk = EmailAddress.objects.filter(email__iexact=ident).values_list("user_id", flat=True).first()
        if pk is None:
            pk = users.filter(email__iexact=ident).values_list("pk", flat=True).first()
    if pk is not None:
        return f"user:{pk}"
    return "name:" + hashlib.sha256(ident.encode()).hexdigest()[:32]


def refuse_if_locked(key: str) -> None:
    """Raise :class:`AccountLocked` while ``key``'s account is locked."""
    if settings.LOGIN_ACCOUNT_LIMIT is None:
        return
    until = cache.get(f"{PREFIX}:lock:{key}")
    if until is not None:
        left = math.ceil(until - time.time())
        if left > 0:
            raise AccountLocked(left)


def record(key: str, succeeded: bool) -> None:
    """Count a failed check (the N-th within the window locks the account); a success clears the count."""
    limit = settings.LOGIN_ACCOUNT_LIMIT
    if limit is None:
        return
    failures_key = f"{PREFIX}:fails:{key}"
    if succeeded:
        cache.delete(failures_key)
        return
    count, window, lock = limit
    now = time.time()
    recent = [t for t in cache.get(failures_key, []) if t > now - window] + [now]
    if len(recent) >= count:
        cache.set(f"{PREFIX}:lock:{key}", now + lock, timeout=lock)
        cache.delete(failures_key)
    else:
        cache.set(failures_key, recent, timeout=window)


def password_login(request, identifier: str, password: str):
    """The active user ``identifier`` (user name or e-mail) and ``password`` name, or None; raises
    :class:`AccountLocked` (429) while the account is locked, before the password is even checked."""
    key = account_key(identifier)
    refuse_if_locked(key)
    user = authenticate(request, username=identifier, password=password)
    ok = user is not None and user.is_active
    record(key, ok)
    return user if ok else None
