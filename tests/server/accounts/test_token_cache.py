"""Token lookups are cached briefly: revocation counts at once in the revoking process and within
ASSAY_TOKEN_CACHE_SECONDS in the others (here: a change made behind the server's back)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assay.server.accounts.models import ApiToken
from assay.server.accounts.tokens import check_token, create_token, revoke_token
from assay.server.submissions.models import WorkerToken
from assay.server.submissions.services.tokens import authenticate_worker, create_worker_token, revoke_worker_token

pytestmark = pytest.mark.django_db


def statements(call) -> int:
    with CaptureQueriesContext(connection) as ctx:
        call()
    return len(ctx.captured_queries)


def test_a_worker_token_is_looked_up_once_and_revoked_at_once(admin_user):
    row, token = create_worker_token(admin_user, "w")
    assert statements(lambda: authenticate_worker(token)) == 2  # the lookup, and last_used_at (once a minute)
    assert statements(lambda: authenticate_worker(token)) == 0
    assert authenticate_worker(token).pk == row.pk
    revoke_worker_token(admin_user, row)
    assert authenticate_worker(token) is None


def test_an_api_token_is_looked_up_once_and_revoked_at_once(participant):
    row, token = create_token(participant, "t")
    assert statements(lambda: check_token(token)) == 2
    assert statements(lambda: check_token(token)) == 0
    revoke_token(participant, row)
    assert check_token(token).problem == "revoked"


def test_each_caller_gets_its_own_copy(participant):
    _, token = create_token(participant, "t")
    first, second = check_token(token).row, check_token(token).row
    assert first is not second and first.user is not second.user
    first.user.email = "changed@example.org"
    assert check_token(token).row.user.email == "alice@uni.example"


def test_a_deactivated_user_is_refused_at_once(participant):
    _, token = create_token(participant, "t")
    assert check_token(token).row is not None
    participant.is_active = False
    participant.save()
    assert check_token(token).problem == "unknown"


def test_a_cached_token_is_refused_the_moment_it_expires(participant, monkeypatch):
    row, token = create_token(participant, "t", days=1)
    assert check_token(token).row is not None
    later = row.expires_at + dt.timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert check_token(token).problem == "expired"


def test_a_revocation_elsewhere_counts_within_the_bound(admin_user, settings):
    settings.TOKEN_CACHE_SECONDS = 0.5
    _, token = create_worker_token(admin_user, "w")
    assert authenticate_worker(token) is not None
    WorkerToken.objects.filter(name="w").update(revoked_at=timezone.now())  # another process's revocation
    assert authenticate_worker(token) is not None  # this process has not heard of it yet
    time.sleep(0.6)
    assert authenticate_worker(token) is None


def test_a_revocation_landing_while_a_lookup_reads_the_row_is_not_outlived(participant):
    """Another thread revokes (and empties the cache) after this lookup read the row, before it kept it:
    the old row must not be kept, or the revoked token would pass here for the cache's seconds."""
    row, token = create_token(participant, "t")
    revoked = []

    def revoke_after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not revoked and "token_hash" in sql and sql.lstrip().upper().startswith("SELECT"):
            revoked.append(True)
            revoke_token(participant, ApiToken.objects.get(pk=row.pk))
        return result

    with connection.execute_wrapper(revoke_after_the_read):
        assert check_token(token).row is not None  # read before the revocation: this request still passes
    assert revoked
    assert check_token(token).problem == "revoked"


def test_a_worker_token_revoked_while_a_lookup_reads_it_is_not_outlived(admin_user):
    row, token = create_worker_token(admin_user, "w")
    revoked = []

    def revoke_after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not revoked and "token_hash" in sql and sql.lstrip().upper().startswith("SELECT"):
            revoked.append(True)
            revoke_worker_token(admin_user, WorkerToken.objects.get(pk=row.pk))
        return result

    with connection.execute_wrapper(revoke_after_the_read):
        assert authenticate_worker(token) is not None
    assert revoked
    assert authenticate_worker(token) is None
