"""Settings from the environment (12-factor). Defaults give the embedded platform: SQLite and local
files under ``./var``; production sets ``ASSAY_DATABASE_URL`` (PostgreSQL) and friends."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from assay.bundle import Limits
from assay.server.accounts.config import email_settings, login_account_limit, oidc_providers
from assay.server.clientaddr import parse_trusted_proxies
from assay.server.observability.logs import logging_settings
from assay.server.storage_config import default_storage_settings


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


VAR_DIR = Path(os.environ.get("ASSAY_VAR_DIR", "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """From ASSAY_SECRET_KEY, else generated once and kept (mode 600) under the var folder."""
    if os.environ.get("ASSAY_SECRET_KEY"):
        return os.environ["ASSAY_SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Written whole under a private name, then linked into place: processes starting together
        # (gunicorn's, pytest-xdist's) never read a half-written key, and the first link wins.
        key = secrets.token_urlsafe(50)
        draft = VAR_DIR / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("ASSAY_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ASSAY_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("ASSAY_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets as static files (no CDN: works offline)
    "assay.server.tasks",  # background tasks (e-mails, webhooks): every app below the faces may enqueue
    "assay.server.accounts",
    "assay.server.teams",
    "assay.server.challenges",
    "assay.server.submissions",
    "assay.server.leaderboards",
    "assay.server.audits",  # after leaderboards: its receivers run after the entries are written
    "assay.server.data_packages",  # datasets as versioned, hashed, access-controlled packages
    "assay.server.models_zoo",  # models registered once, submitted to many phases
    "assay.server.notifications",  # e-mails and webhooks after evaluations and approvals (through tasks)
    "assay.server.api",
    "assay.server.uploads",
    "assay.server.observability",  # metrics and log lines of submissions: after leaderboards' and audits' receivers
    "assay.server.web",  # before allauth: its templates override allauth's
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]

MIDDLEWARE = [
    # first, so every answer has its request id and its latency counted (assay.server.observability)
    "assay.server.observability.middleware.RequestId",
    "assay.server.observability.middleware.HttpMetrics",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /api/...: hostile bodies, paths and ids refused, every error in the API's JSON shape (api/guards.py)
    "assay.server.api.guards.ApiGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # a refusal a web view lets escape: its styled page, not a 500 (web/views/errors.py)
    "assay.server.web.views.errors.RefusalPages",
]

ROOT_URLCONF = "assay.server.urls"
WSGI_APPLICATION = "assay.server.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assay.server.web.context.navigation",
            ],
        },
    },
]


def _databases() -> dict:
    url = os.environ.get("ASSAY_DATABASE_URL", "").strip() or f"sqlite:///{VAR_DIR / 'assay.sqlite3'}"
    # Persistent connections (per thread): opening one per request was ~6% of a busy server's time.
    db = dj_database_url.parse(url, conn_max_age=env_int("ASSAY_DB_CONN_MAX_AGE", 60), conn_health_checks=True)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # Django's backend with writers queued on locks that wake them (sqlite_backend/base.py says why)
        db["ENGINE"] = "assay.server.sqlite_backend"
        db["OPTIONS"] = {
            # WAL lets readers go on while the one writer commits; IMMEDIATE takes the write lock at
            # BEGIN, so two writers queue on busy_timeout instead of failing with "database is locked".
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # A file (threads of one test run share it), named per process so parallel runs never collide.
        db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    else:
        db["TEST"] = {"NAME": f"test_{db['NAME']}_{os.getpid()}"}
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("ASSAY_MEDIA_ROOT", VAR_DIR / "media")).resolve()


def _default_storage() -> dict:
    """Local files under MEDIA_ROOT, or an S3-compatible bucket with ASSAY_STORAGE_URL=s3://… (storage_config)."""
    try:
        return default_storage_settings(os.environ)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


STORAGES = {
    "default": _default_storage(),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG and env_bool("ASSAY_COMPRESS_STATIC", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
FILE_UPLOAD_PERMISSIONS = 0o640
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

BUNDLE_LIMITS = Limits(
    max_total_bytes=env_int("ASSAY_BUNDLE_MAX_BYTES", Limits.max_total_bytes),
    max_entries=env_int("ASSAY_BUNDLE_MAX_ENTRIES", Limits.max_entries),
    max_file_bytes=env_int("ASSAY_BUNDLE_MAX_FILE_BYTES", Limits.max_file_bytes),
)

WORKER_LEASE_SECONDS = env_int("ASSAY_LEASE_SECONDS", 60)
WORKER_MAX_ATTEMPTS = env_int("ASSAY_MAX_ATTEMPTS", 3)
WORKER_LONG_POLL_SECONDS = env_int("ASSAY_LONG_POLL_SECONDS", 20)
# A waiting claim is woken by new work; this is only its safety re-check (a signal missed, a lease run out).
WORKER_CLAIM_RECHECK_SECONDS = env_int("ASSAY_CLAIM_RECHECK_SECONDS", 5)
# SQLite only: how often each server process checks whether another one committed (PRAGMA data_version),
# while claims wait; 0 turns it off (one server process). Cost and latency measured in BENCHMARKS.md.
WORKER_QUEUE_WATCH_SECONDS = float(os.environ.get("ASSAY_QUEUE_WATCH_SECONDS", "0.1"))
# SQLite only: a commit that queues work also pokes the other processes' waiting claims through a Unix datagram
# socket each (under VAR_DIR/wake), at once; the watch above stays as the safety net. 0 turns the pokes off.
WORKER_QUEUE_WAKE_SOCKETS = env_bool("ASSAY_QUEUE_WAKE_SOCKETS", True)
# Token rows found usable are cached this many seconds per process (0: off): a revocation reaches the
# other processes of a multi-process server within this bound (at once in the one that revokes).
TOKEN_CACHE_SECONDS = float(os.environ.get("ASSAY_TOKEN_CACHE_SECONDS", "5"))
# A phase's rules (dates, limits, splits and labels) likewise: a host's edit reaches other processes within it.
PHASE_CACHE_SECONDS = float(os.environ.get("ASSAY_PHASE_CACHE_SECONDS", "5"))
# Leaderboard pages and the challenge list, kept whole in the shared cache under version keys that every
# write changing them replaces (assay.server.read_cache); this bounds an entry's life. 0: off.
READ_CACHE_SECONDS = float(os.environ.get("ASSAY_READ_CACHE_SECONDS", "300"))
# How the demo's in-process worker reaches its server: "inprocess" (the services, no HTTP) or "http".
INPROCESS_WORKER_TRANSPORT = os.environ.get("ASSAY_INPROCESS_WORKER_TRANSPORT", "inprocess").strip().lower()
if INPROCESS_WORKER_TRANSPORT not in ("inprocess", "http"):
    raise ImproperlyConfigured("ASSAY_INPROCESS_WORKER_TRANSPORT is 'inprocess' or 'http'")
# Where `assay demo`'s embedded worker runs: "process" (a child process beside the server, with the background
# tasks: the two use another core than the requests) or "thread" (a thread of the server process).
EMBEDDED_WORKER = os.environ.get("ASSAY_EMBEDDED_WORKER", "process").strip().lower()
if EMBEDDED_WORKER not in ("process", "thread"):
    raise ImproperlyConfigured("ASSAY_EMBEDDED_WORKER is 'process' or 'thread'")
# jobs the in-process worker evaluates at once: it claims that many in one call and reports those that end together
# in one (the batched protocol); 1 is one job at a time over the one-job calls
INPROCESS_WORKER_SLOTS = min(max(env_int("ASSAY_INPROCESS_WORKER_SLOTS", 4), 1), 16)
# Background tasks (assay.server.tasks): a runner thread in `assay serve`/`assay demo` unless 0 (production
# runs `assay admin run-tasks` instead); how often a runner looks for tasks other processes committed; how
# long one run may take before another runner takes the task over; retry backoff; how long finished rows stay.
TASKS_INPROCESS = env_bool("ASSAY_TASKS_INPROCESS", True)
TASKS_POLL_SECONDS = float(os.environ.get("ASSAY_TASKS_POLL_SECONDS", "2"))
TASKS_LEASE_SECONDS = env_int("ASSAY_TASKS_LEASE_SECONDS", 600)
TASKS_RETRY_BASE_SECONDS = float(os.environ.get("ASSAY_TASKS_RETRY_BASE_SECONDS", "10"))
TASKS_RETRY_CAP_SECONDS = float(os.environ.get("ASSAY_TASKS_RETRY_CAP_SECONDS", "3600"))
TASKS_KEEP_DAYS = env_int("ASSAY_TASKS_KEEP_DAYS", 14)
# Notifications (assay.server.notifications): links in e-mails and webhook payloads start with SITE_URL; the
# hosts are told once per window when the last N evaluations of their challenge, all within it, failed;
# webhooks: per-request timeout, tries per event, and whether a target in a private network is allowed (SSRF).
SITE_URL = os.environ.get("ASSAY_SITE_URL", "").strip() or f"http://127.0.0.1:{os.environ.get('ASSAY_PORT', '8000')}"
NOTIFY_FAILURE_STREAK = env_int("ASSAY_NOTIFY_FAILURE_STREAK", 5)
NOTIFY_FAILURE_WINDOW_MINUTES = env_int("ASSAY_NOTIFY_FAILURE_WINDOW_MINUTES", 60)
WEBHOOKS_TIMEOUT_SECONDS = float(os.environ.get("ASSAY_WEBHOOKS_TIMEOUT_SECONDS", "10"))
WEBHOOKS_MAX_ATTEMPTS = env_int("ASSAY_WEBHOOKS_MAX_ATTEMPTS", 8)
WEBHOOKS_ALLOW_PRIVATE = env_bool("ASSAY_WEBHOOKS_ALLOW_PRIVATE", False)
# who listens (webhooks' events, teams with every e-mail off), kept per process: other processes see a change
# within this many seconds (notifications.services.listeners)
NOTIFY_LISTENERS_CACHE_SECONDS = float(os.environ.get("ASSAY_NOTIFY_LISTENERS_CACHE_SECONDS", "5"))
EVALUATION_MEMORY_BYTES = env_int("ASSAY_EVALUATION_MEMORY_BYTES", 4 * 1024**3)
EVALUATION_MAX_PROCESSES = env_int("ASSAY_EVALUATION_MAX_PROCESSES", 64)
EVALUATION_MAX_OUTPUT_BYTES = env_int("ASSAY_EVALUATION_MAX_OUTPUT_BYTES", 1024**2)
SUBMISSION_MAX_BYTES = env_int("ASSAY_SUBMISSION_MAX_BYTES", 4 * 1024**3)
# Data packages (docs/data-packages.md): the largest archive and unpacked total of one published version,
# and the most entries its zip may hold.
DATA_PACKAGE_MAX_BYTES = env_int("ASSAY_DATA_PACKAGE_MAX_BYTES", 20 * 1024**3)
DATA_PACKAGE_MAX_ENTRIES = env_int("ASSAY_DATA_PACKAGE_MAX_ENTRIES", 10_000)
# Audit manifests are signed with this Ed25519 private key (PEM file; `assay audit keygen` makes one);
# unset: manifests are built unsigned ("signature": null).
AUDIT_SIGNING_KEY = os.environ.get("ASSAY_AUDIT_SIGNING_KEY", "").strip()
# Container submissions: the architecture workers run (images for others are refused at upload), and
# the registries whose image references (EvalAI's {"submitted_image_uri": …}) may be submitted instead
# of a tarball; none by default, since only a registry the operator runs can be trusted to keep them.
CONTAINER_ARCHITECTURE = os.environ.get("ASSAY_CONTAINER_ARCHITECTURE", "")
CONTAINER_REGISTRIES = [
    r.strip().rstrip("/") for r in os.environ.get("ASSAY_CONTAINER_REGISTRIES", "").split(",") if r.strip()
]

# --- client addresses and rate limits -----------------------------------------------------------------
# X-Forwarded-For counts only behind the proxies named here (hop count, or addresses/CIDRs); off by default.
TRUSTED_PROXIES = parse_trusted_proxies(os.environ.get("ASSAY_TRUSTED_PROXIES", ""))


def _caches() -> dict:
    """Shared by every server process, so throttle counts survive restarts and are not split per worker:
    the database by default (its table is made at migrate time), Redis with ``ASSAY_CACHE_URL=redis://…``."""
    url = os.environ.get("ASSAY_CACHE_URL", "").strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    if url:
        raise ImproperlyConfigured(f"ASSAY_CACHE_URL: {url!r} is not a redis:// URL (leave it empty for the database)")
    # Django's default of 300 entries would make cached pages, version tokens and throttle counts evict each other
    # (a full table deletes a third of it): room for a busy instance's pages, bounded so the table stays small.
    options = {"MAX_ENTRIES": env_int("ASSAY_CACHE_MAX_ENTRIES", 50_000)}
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "assay_cache",
            "OPTIONS": options,
        }
    }


CACHES = _caches()
# API tokens: live ones per account (signing in at the cap revokes the least recently used; asking for one
# by name is refused), and the evalai CLI token's lifetime in days.
API_TOKENS_PER_USER = env_int("ASSAY_MAX_TOKENS_PER_USER", 20)
EVALAI_TOKEN_DAYS = env_int("ASSAY_EVALAI_TOKEN_DAYS", 90)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "assay.server.api.errors.api_exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # personal API tokens (assay and evalai CLIs); no Basic auth: passwords go through the throttled login
        "assay.server.api.token_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_RATES": {
        "login": os.environ.get("ASSAY_LOGIN_RATE", "10/min"),
        "submit": os.environ.get("ASSAY_SUBMIT_RATE", "30/min"),
    },
}
# Failed sign-ins to one account, from any address, lock its password sign-in for a while (accounts/login_throttle.py)
LOGIN_ACCOUNT_LIMIT = login_account_limit(os.environ)
SPECTACULAR_SETTINGS = {
    "TITLE": "Assay API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # the EvalAI-compatible paths (/api/…) are described by EvalAI's own documentation, not here
    "PREPROCESSING_HOOKS": ["assay.server.api.v1.base.only_native_paths"],
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, not a CDN: the docs work offline
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # one name for a submission's status wherever a submission is answered (other models have a status too)
    "ENUM_NAME_OVERRIDES": {"SubmissionStatusEnum": "assay.server.submissions.models.Submission.Status"},
}

# --- accounts (django-allauth): sign-up with e-mail verification, OpenID Connect from the environment ---
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Assay] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = os.environ.get("ASSAY_URL_SCHEME", "http")
ACCOUNT_ADAPTER = "assay.server.accounts.adapter.AccountAdapter"
# allauth keeps its per-address limit on failed sign-ins; its per-name one ("5/300s/key", keyed by the text typed,
# so a user name and an e-mail were two budgets) gives way to the per-account LOGIN_ACCOUNT_LIMIT above
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip"}
SIGNUP_OPEN = env_bool("ASSAY_SIGNUP_OPEN", True)
ACCOUNT_USERNAME_BLACKLIST = ["admin", "root", "assay", "staff", "support"]
SOCIALACCOUNT_ADAPTER = "assay.server.accounts.social_adapter.SocialAccountAdapter"  # verified e-mail, clear refusals
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never merge an OIDC login into an account by e-mail alone
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": oidc_providers(os.environ)}}
_email = email_settings(os.environ)
EMAIL_BACKEND = _email.pop("EMAIL_BACKEND")
globals().update(_email)  # EMAIL_HOST, EMAIL_PORT, DEFAULT_FROM_EMAIL, … (see accounts/config.py)

# --- monitoring (assay.server.observability; README "Monitoring") -----------------------------------------------
# Human text, or one JSON object per line with ASSAY_LOG_FORMAT=json (request id, submission, challenge, phase).
LOGGING = logging_settings(os.environ)
# /metrics answers callers on this machine, and anyone with "Authorization: Bearer <this>" when it is set.
METRICS_TOKEN = os.environ.get("ASSAY_METRICS_TOKEN", "").strip()
# /readyz wants a platform-queue worker heard from within this many minutes; 0: workers are not checked.
READY_WORKER_MINUTES = env_int("ASSAY_READY_WORKER_MINUTES", 10)
