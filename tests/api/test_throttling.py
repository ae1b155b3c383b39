"""Login throttling that a forged X-Forwarded-For cannot bypass and a restart does not reset; the cap on
live API tokens and the evalai CLI token's lifetime."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from assay.server.clientaddr import client_address, parse_trusted_proxies
from tests.factories import REPO, client_for, make_user

BAD = {"username": "alice", "password": "wrong"}


@pytest.fixture
def login_rate(monkeypatch):
    """Three logins a minute per client (DRF reads rates at import: patch the class attribute)."""
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "3/min", "submit": "10000/min"})
    cache.clear()


def _address(remote: str, forwarded: str | None = None) -> str:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **meta))


# --- which address counts ----------------------------------------------------------------------------


def test_forwarded_for_is_ignored_by_default(settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("")
    assert _address("192.0.2.1", "203.0.113.9") == "192.0.2.1"
    assert _address("192.0.2.1") == "192.0.2.1"


def test_hop_count_takes_the_address_the_nearest_proxies_saw(settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("1")
    # the client forged "6.6.6.6"; the one proxy appended the address it saw, 203.0.113.9
    assert _address("10.0.0.2", "6.6.6.6, 203.0.113.9") == "203.0.113.9"
    assert _address("10.0.0.2") == "10.0.0.2"  # came around the proxy: its own address
    settings.TRUSTED_PROXIES = parse_trusted_proxies("2")
    assert _address("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1") == "203.0.113.9"
    assert _address("10.0.0.2", "203.0.113.9") == "203.0.113.9"  # fewer hops than configured: the leftmost


def test_proxy_list_walks_back_through_trusted_proxies_only(settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, fd00::/8")
    assert _address("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3") == "198.51.100.7"
    assert _address("192.0.2.50", "198.51.100.7") == "192.0.2.50"  # not from a proxy: the header is anyone's
    assert _address("fd00::1", "[2001:db8::5]:4711") == "2001:db8::5"
    assert _address("127.0.0.1", "198.51.100.7:5000") == "198.51.100.7"
    assert _address("127.0.0.1", "10.0.0.9") == "10.0.0.9"  # every hop a proxy: the leftmost seen
    # an unreadable entry stops the walk: garbage never becomes the address
    assert _address("127.0.0.1", "198.51.100.7, not-an-ip") == "127.0.0.1"
    assert _address("127.0.0.1", "x" * 5000) == "127.0.0.1"


def test_bad_proxy_setting_fails_at_start():
    with pytest.raises(ImproperlyConfigured, match="neither a number of proxy hops"):
        parse_trusted_proxies("10.0.0.0/8, proxy.example")


def test_allauth_rate_limits_count_the_same_address(settings):
    from allauth.account.adapter import get_adapter

    settings.TRUSTED_PROXIES = parse_trusted_proxies("")
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert get_adapter(request).get_client_ip(request) == "192.0.2.1"


# --- the login throttle ------------------------------------------------------------------------------


def test_rotating_forwarded_for_does_not_bypass_the_login_throttle(users, login_rate, settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("")
    anon = APIClient()
    answers = [anon.post("/api/v1/auth/login", BAD, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}") for i in range(5)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429, 429]
    refused = answers[3]
    assert refused.json()["error"]["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # the EvalAI login shares the budget, and answers in EvalAI's shape
    evalai = anon.post("/api/auth/login", BAD, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert evalai.status_code == 429 and "throttled" in evalai.json()["error"] and evalai["Retry-After"]
    # the right password does not get through either while the budget is spent
    assert anon.post("/api/v1/auth/login", {"username": "alice", "password": "pw"}).status_code == 429


def test_a_trusted_proxy_passes_each_client_through(users, login_rate, settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("1")
    anon = APIClient(REMOTE_ADDR="10.0.0.2")
    # five clients behind the proxy: each has its own budget
    codes = [anon.post("/api/v1/auth/login", BAD, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(5)]
    assert codes == [401] * 5
    # one client forging the left part of the header: the proxy's hop is what counts, so it is throttled
    codes = [
        anon.post("/api/v1/auth/login", BAD, HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.77").status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    assert anon.post("/api/v1/auth/login", BAD, HTTP_X_FORWARDED_FOR="203.0.113.78").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_throttle_counts_survive_a_new_server_process(login_rate, settings):
    """The counts are in the database cache: another process (a restart, another gunicorn worker) sees them."""
    from django.db import connection

    make_user("alice")
    anon = APIClient()
    assert [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(3)] == [401, 401, 401]
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().post('/api/v1/auth/login', {'username': 'alice', 'password': 'wrong'})\n"
        "print(r.status_code, r.get('Retry-After'))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "assay.server.settings",
        "ASSAY_DATABASE_URL": url,
        "ASSAY_LOGIN_RATE": "3/min",
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),
    }
    env.pop("ASSAY_CACHE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    status, retry_after = out.stdout.split()[-2:]
    assert status == "429" and 1 <= int(retry_after) <= 60, out.stdout + out.stderr


def _redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    try:
        import redis  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _redis_reachable(), reason="no Redis at 127.0.0.1:6379 (or redis-py missing)")
def test_throttle_counts_in_redis_when_configured(users, login_rate, settings):
    from django.core.cache import caches

    prefix = f"assay-test-{uuid.uuid4().hex}"  # others may share this Redis: never FLUSHDB it
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": prefix,
        }
    }
    anon = APIClient()
    try:
        before = time.time()
        assert [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(4)] == [401, 401, 401, 429]
        # a freshly opened connection (as another server process would hold) sees the same three attempts
        fresh = caches.create_connection("default")
        arrival = fresh.get("throttle_login_127.0.0.1")  # three requests of 3/min: the bucket empty for 60 s
        # the first request's time + 3 x 20 s, that time lying between `before` and now (however slow the run)
        assert before + 60 <= arrival / 1e6 <= time.time() + 60
    finally:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


# --- the bucket: N at once, then one per period / N ------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by hand (seconds)."""
    from assay.server.api.throttling import ScopedRateThrottle

    now = [1_800_000_000.0]
    monkeypatch.setattr(ScopedRateThrottle, "timer", staticmethod(lambda: now[0]))
    return now


def test_a_spent_budget_refills_one_request_per_period_over_the_rate(users, login_rate, clock):
    anon = APIClient()
    assert [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(4)] == [401, 401, 401, 429]
    refused = anon.post("/api/v1/auth/login", BAD)
    assert refused.status_code == 429 and refused["Retry-After"] == "20"  # 3/min: one every 20 s
    clock[0] += 15
    refused = anon.post("/api/v1/auth/login", BAD)
    assert refused.status_code == 429 and refused["Retry-After"] == "5"  # refusals spend nothing
    clock[0] += 5
    assert [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(2)] == [401, 429]
    clock[0] += 60  # a whole period idle: the full budget again, no more
    assert [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_the_count_is_one_number_whatever_the_rate(users, monkeypatch, clock, settings):
    """DRF kept every request's time of the last period and re-wrote it whole per check; the bucket is
    one number, and a rate that never refuses still refuses at its count."""
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "200/min", "submit": "10000/min"})
    settings.LOGIN_ACCOUNT_LIMIT = None  # 200 failures: the per-account lock out of the way
    cache.clear()
    anon = APIClient()
    codes = [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(201)]
    assert codes == [401] * 200 + [429]
    assert isinstance(cache.get("throttle_login_127.0.0.1"), int)


def test_a_request_log_from_before_the_bucket_still_counts(users, login_rate, clock):
    """Counts DRF's throttle stored (a list of request times, newest first) keep their budget spent."""
    from django.core.cache import cache

    cache.set("throttle_login_127.0.0.1", [clock[0] - 1, clock[0] - 2, clock[0] - 3, clock[0] - 90], 60)
    anon = APIClient()
    assert anon.post("/api/v1/auth/login", BAD).status_code == 429  # three of the last minute: spent
    clock[0] += 20
    assert [anon.post("/api/v1/auth/login", BAD).status_code for _ in range(2)] == [401, 429]


# --- the cap on live tokens --------------------------------------------------------------------------


def _live(user) -> list[str]:
    from assay.server.accounts.tokens import live_tokens

    return sorted(live_tokens(user).values_list("name", flat=True))


def test_asking_for_a_token_at_the_cap_is_refused(users, settings):
    from assay.server.accounts.models import ApiToken

    settings.API_TOKENS_PER_USER = 3
    alice = users["participant"]
    api = client_for(alice)  # the first live token
    assert [api.post("/api/v1/tokens", {"name": f"t{i}", "days": 30}).status_code for i in range(2)] == [201, 201]
    refused = api.post("/api/v1/tokens", {"name": "t9", "days": 30})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "too_many_tokens"
    assert "3 live API tokens" in refused.json()["error"]["message"]
    assert _live(alice) == ["t0", "t1", "test"]
    # expired and revoked tokens do not count
    ApiToken.objects.filter(user=alice, name="t0").update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert api.post("/api/v1/tokens", {"name": "t2", "days": 30}).status_code == 201
    t1 = ApiToken.objects.get(user=alice, name="t1")
    assert api.delete(f"/api/v1/tokens/{t1.pk}").status_code == 204
    assert api.post("/api/v1/tokens", {"name": "t3", "days": 30}).status_code == 201
    assert _live(alice) == ["t2", "t3", "test"]


def test_the_web_tokens_page_says_why_at_the_cap(users, settings, client):
    from assay.server.accounts.tokens import create_token

    settings.API_TOKENS_PER_USER = 1
    create_token(users["participant"], "only", 30)
    client.force_login(users["participant"])
    page = client.post("/account/tokens", {"name": "another", "days": 30})
    assert page.status_code == 400 and "1 live API tokens" in page.content.decode()
    assert _live(users["participant"]) == ["only"]


def test_signing_in_at_the_cap_revokes_the_least_recently_used_token(users, settings):
    from assay.server.accounts.models import ApiToken
    from assay.server.accounts.tokens import create_token

    settings.API_TOKENS_PER_USER = 3
    alice = users["participant"]
    now = timezone.now()
    for i, name in enumerate(["ci", "old laptop", "script"]):
        row, _ = create_token(alice, name, 30)
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now - dt.timedelta(days=[1, 50, 3][i]))
    r = APIClient().post("/api/v1/auth/login", {"username": "alice", "password": "pw", "token_name": "new laptop"})
    assert r.status_code == 201
    assert _live(alice) == ["ci", "new laptop", "script"]
    assert ApiToken.objects.get(user=alice, name="old laptop").revoked_at is not None
    # the token from signing in works
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}").get("/api/v1/auth/whoami").status_code == 200


def test_evalai_cli_token_is_stable_shorter_lived_and_works_at_the_cap(users, settings):
    settings.API_TOKENS_PER_USER = 2
    settings.EVALAI_TOKEN_DAYS = 90
    anon = APIClient()
    short = anon.post("/api/auth/login", {"username": "alice", "password": "pw"}).json()["token"]
    cli = APIClient(HTTP_AUTHORIZATION=f"Bearer {short}")
    first = cli.get("/api/accounts/user/get_auth_token").json()
    expires = dt.datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(days=89) < expires - timezone.now() <= dt.timedelta(days=90)
    # as EvalAI: the same token on every call (the CLI stores it), from every login
    for _ in range(4):
        short = anon.post("/api/auth/login", {"username": "alice", "password": "pw"}).json()["token"]
        again = APIClient(HTTP_AUTHORIZATION=f"Bearer {short}").get("/api/accounts/user/get_auth_token")
        assert again.status_code == 200 and again.json()["token"] == first["token"]
    stored = APIClient(HTTP_AUTHORIZATION=f"Bearer {first['token']}")
    assert stored.get("/api/participants/participant_team").status_code == 200
    assert len(_live(users["participant"])) <= 2


def test_cache_url_picks_redis_or_refuses_what_it_cannot_use(monkeypatch):
    from assay.server import settings as server_settings

    monkeypatch.setenv("ASSAY_CACHE_URL", "redis://cache.internal:6379/1")
    assert server_settings._caches()["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/1",
    }
    monkeypatch.setenv("ASSAY_CACHE_URL", "memcached://cache.internal")
    with pytest.raises(ImproperlyConfigured, match="not a redis:// URL"):
        server_settings._caches()
    monkeypatch.setenv("ASSAY_CACHE_URL", "")
    assert server_settings._caches()["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    # room for cached pages beside the throttle counts (Django's 300 would cull them together), and a setting
    assert server_settings._caches()["default"]["OPTIONS"] == {"MAX_ENTRIES": 50_000}
    monkeypatch.setenv("ASSAY_CACHE_MAX_ENTRIES", "2000")
    assert server_settings._caches()["default"]["OPTIONS"] == {"MAX_ENTRIES": 2000}


# --- the per-account limit ---------------------------------------------------------------------------

RIGHT = {"username": "alice", "password": "pw"}


@pytest.fixture
def account_limit(monkeypatch, settings):
    """Three failures to one account within 10 minutes lock it for 15; the per-address rate out of the way."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login": "10000/min", "submit": "10000/min"})
    settings.LOGIN_ACCOUNT_LIMIT = (3, 600, 900)


def _fail_from(n: int, who: str = "alice", path: str = "/api/v1/auth/login") -> list[int]:
    """``n`` wrong passwords for ``who``, each from a different address."""
    bad = {"username": who, "password": "wrong"}
    return [APIClient(REMOTE_ADDR=f"198.51.100.{i}").post(path, bad).status_code for i in range(n)]


def test_failures_from_many_addresses_lock_the_account_on_every_api(users, account_limit):
    assert _fail_from(3) == [401, 401, 401]
    # the right password, from a fresh address, is refused while the lock lasts: 429 with Retry-After
    locked = APIClient(REMOTE_ADDR="203.0.113.1").post("/api/v1/auth/login", RIGHT)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
    assert 840 <= int(locked["Retry-After"]) <= 900
    # the EvalAI login obeys the same lock, in EvalAI's shape
    evalai = APIClient(REMOTE_ADDR="203.0.113.2").post("/api/auth/login", RIGHT)
    assert evalai.status_code == 429
    assert evalai.json()["code"] == "account_locked" and "locked" in evalai.json()["error"]
    assert 840 <= int(evalai["Retry-After"]) <= 900
    # other accounts are not touched
    assert APIClient().post("/api/v1/auth/login", {"username": "bob", "password": "pw"}).status_code == 201


def test_user_name_and_email_count_against_one_account(users, account_limit):
    assert _fail_from(2, "alice") == [401, 401]
    assert _fail_from(1, "ALICE@uni.example", "/api/auth/login") == [400]  # EvalAI's "unable to log in"
    assert APIClient().post("/api/v1/auth/login", RIGHT).status_code == 429


def test_a_success_clears_the_count_and_the_lock_ends(users, account_limit, monkeypatch):
    from assay.server.accounts import login_throttle

    assert _fail_from(2) == [401, 401]
    assert APIClient().post("/api/v1/auth/login", RIGHT).status_code == 201
    assert _fail_from(2) == [401, 401]  # counted from zero again: no lock yet
    assert _fail_from(1) == [401]  # the third since the success: locked now
    assert APIClient().post("/api/v1/auth/login", RIGHT).status_code == 429
    later = login_throttle.time.time() + 901
    monkeypatch.setattr(login_throttle.time, "time", lambda: later)
    assert APIClient().post("/api/v1/auth/login", RIGHT).status_code == 201


def test_failures_during_a_lock_do_not_extend_it(users, account_limit, monkeypatch):
    from assay.server.accounts import login_throttle

    assert _fail_from(3) == [401, 401, 401]
    start = login_throttle.time.time()
    monkeypatch.setattr(login_throttle.time, "time", lambda: start + 600)
    assert _fail_from(5) == [429] * 5  # refused before any password check: nothing counted
    monkeypatch.setattr(login_throttle.time, "time", lambda: start + 901)
    assert APIClient().post("/api/v1/auth/login", RIGHT).status_code == 201


def test_an_unknown_name_locks_alike_so_answers_do_not_reveal_accounts(users, account_limit):
    assert _fail_from(3, "nobody") == [401, 401, 401]
    assert _fail_from(1, "nobody") == [429]


def test_the_limit_can_be_turned_off(users, account_limit, settings):
    settings.LOGIN_ACCOUNT_LIMIT = None
    assert _fail_from(6) == [401] * 6
    assert APIClient().post("/api/v1/auth/login", RIGHT).status_code == 201


def test_the_web_form_says_the_account_is_locked_and_shares_the_count(users, account_limit):
    from django.test import Client

    web = Client(REMOTE_ADDR="192.0.2.10")
    wrong = web.post("/accounts/login/", {"login": "alice", "password": "wrong"})
    assert wrong.status_code == 200 and "_auth_user_id" not in web.session
    assert _fail_from(2) == [401, 401]  # two more through the API: three in all
    answer = web.post("/accounts/login/", {"login": "alice", "password": "pw"})
    assert answer.status_code == 200  # the form again, with the reason; not signed in
    assert "Too many failed sign-ins to this account" in answer.content.decode()
    assert "_auth_user_id" not in web.session
    # a right password on the form still signs in another account
    assert Client().post("/accounts/login/", {"login": "bob", "password": "pw"}).status_code == 302


def test_account_limit_settings_are_read_or_refused():
    from assay.server.accounts.config import login_account_limit

    assert login_account_limit({}) == (10, 900, 900)
    assert login_account_limit({"ASSAY_LOGIN_ACCOUNT_LIMIT": "5/1h", "ASSAY_LOGIN_ACCOUNT_LOCK": "120"}) == (
        5,
        3600,
        120,
    )
    assert login_account_limit({"ASSAY_LOGIN_ACCOUNT_LIMIT": "off"}) is None
    for bad in ("ten/15min", "10", "0/15min", "10/soon"):
        with pytest.raises(ValueError, match="ASSAY_LOGIN_ACCOUNT_LIMIT"):
            login_account_limit({"ASSAY_LOGIN_ACCOUNT_LIMIT": bad})
    with pytest.raises(ValueError, match="ASSAY_LOGIN_ACCOUNT_LOCK"):
        login_account_limit({"ASSAY_LOGIN_ACCOUNT_LOCK": "forever"})
