"""Account settings read from the environment: outgoing e-mail and OpenID Connect providers.

Pure functions of ``os.environ`` (no Django import), so ``settings.py`` can call them and tests can
feed them any environment. Bad values raise ``ValueError`` naming the variable: a server that would
silently lose its verification e-mails, or offer a login button that cannot work, should not start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

CONSOLE = "django.core.mail.backends.console.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
FILE = "django.core.mail.backends.filebased.EmailBackend"
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
DUMMY = "django.core.mail.backends.dummy.EmailBackend"

_TRUE = ("1", "true", "yes", "on")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def email_settings(env: Mapping[str, str]) -> dict[str, object]:
    """Django's EMAIL_* settings from ``ASSAY_EMAIL_URL`` or ``ASSAY_SMTP_*``; console when neither is set.

    ``ASSAY_EMAIL_URL`` forms: ``smtp://user:password@host:587?tls=1`` (or ``smtps://…`` for implicit
    TLS, ``?ssl=1`` too), ``console://``, ``file:///path/to/folder``, ``locmem://``, ``dummy://``.
    """
    out: dict[str, object] = {
        "DEFAULT_FROM_EMAIL": env.get("ASSAY_EMAIL_FROM", "").strip() or "Assay <noreply@localhost>",
    }
    out["SERVER_EMAIL"] = out["DEFAULT_FROM_EMAIL"]
    url = env.get("ASSAY_EMAIL_URL", "").strip()
    if url:
        out.update(_from_url(url))
    elif env.get("ASSAY_SMTP_HOST", "").strip():
        port = env.get("ASSAY_SMTP_PORT", "").strip() or "587"
        if not port.isdigit():
            raise ValueError(f"ASSAY_SMTP_PORT must be a number, not {port!r}")
        out.update(
            EMAIL_BACKEND=SMTP,
            EMAIL_HOST=env["ASSAY_SMTP_HOST"].strip(),
            EMAIL_PORT=int(port),
            EMAIL_HOST_USER=env.get("ASSAY_SMTP_USER", ""),
            EMAIL_HOST_PASSWORD=env.get("ASSAY_SMTP_PASSWORD", ""),
            EMAIL_USE_TLS=_flag(env.get("ASSAY_SMTP_TLS", "1")) and not _flag(env.get("ASSAY_SMTP_SSL")),
            EMAIL_USE_SSL=_flag(env.get("ASSAY_SMTP_SSL")),
        )
    else:
        out["EMAIL_BACKEND"] = CONSOLE
    out["EMAIL_TIMEOUT"] = 30
    return out


def _from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme == "console":
        return {"EMAIL_BACKEND": CONSOLE}
    if scheme == "locmem":
        return {"EMAIL_BACKEND": LOCMEM}
    if scheme == "dummy":
        return {"EMAIL_BACKEND": DUMMY}
    if scheme == "file":
        if not parts.path:
            raise ValueError("ASSAY_EMAIL_URL file:// needs a folder, e.g. file:///var/lib/assay/mail")
        return {"EMAIL_BACKEND": FILE, "EMAIL_FILE_PATH": unquote(parts.path)}
    if scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise ValueError("ASSAY_EMAIL_URL smtp:// needs a host, e.g. smtp://user:pass@mail.example.org:587")
        ssl = scheme == "smtps" or _flag(query.get("ssl"))
        try:
            port = parts.port or (465 if ssl else 587)
        except ValueError:
            raise ValueError("ASSAY_EMAIL_URL has a port that is not a number") from None
        return {
            "EMAIL_BACKEND": SMTP,
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port,
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_SSL": ssl,
            "EMAIL_USE_TLS": not ssl and _flag(query.get("tls", "1")),
        }
    raise ValueError(f"ASSAY_EMAIL_URL scheme {scheme!r} is not one of smtp, smtps, console, file, locmem, dummy")


_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def oidc_providers(env: Mapping[str, str]) -> list[dict[str, object]]:
    """allauth ``openid_connect`` apps from ``ASSAY_OIDC_PROVIDERS=keycloak,cognito`` and, per id,
    ``ASSAY_OIDC_<ID>_ISSUER``, ``_CLIENT_ID``, ``_CLIENT_SECRET`` and optional ``_NAME``, ``_SCOPES``.

    Any OIDC issuer works (Keycloak realm URL, ``https://cognito-idp.<region>.amazonaws.com/<pool>``,
    Google, Azure AD …): the discovery document at ``<issuer>/.well-known/openid-configuration`` says
    the rest.
    """
    ids = [p.strip().lower() for p in env.get("ASSAY_OIDC_PROVIDERS", "").split(",") if p.strip()]
    apps = []
    for pid in ids:
        if not _ID.match(pid):
            raise ValueError(f"ASSAY_OIDC_PROVIDERS: {pid!r} is not a valid id (a-z, 0-9, _ and -)")
        key = "ASSAY_OIDC_" + pid.upper().replace("-", "_")
        missing = [f"{key}_{n}" for n in ("ISSUER", "CLIENT_ID") if not env.get(f"{key}_{n}", "").strip()]
        if missing:
            raise ValueError(f"OpenID Connect provider {pid!r} needs {', '.join(missing)}")
        issuer = env[f"{key}_ISSUER"].strip()
        if not issuer.startswith(("https://", "http://")):
            raise ValueError(f"{key}_ISSUER must be an http(s) URL, not {issuer!r}")
        app: dict[str, object] = {
            "provider_id": pid,
            "name": env.get(f"{key}_NAME", "").strip() or pid.capitalize(),
            "client_id": env[f"{key}_CLIENT_ID"].strip(),
            "secret": env.get(f"{key}_CLIENT_SECRET", "").strip(),
            "settings": {"server_url": issuer.rstrip("/"), "oauth_pkce_enabled": True},
        }
        scopes = env.get(f"{key}_SCOPES", "").split()
        if scopes:
            app["settings"]["scope"] = scopes  # type: ignore[index]
        apps.append(app)
    return apps


_DURATION = re.compile(r"^(\d+)\s*(s|sec|m|min|h|hour)?$")
_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


def _seconds(name: str, text: str) -> int:
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{name}: {text!r} is not a duration (such as 900, 15min or 1h)")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def login_account_limit(env: Mapping[str, str]) -> tuple[int, int, int] | None:
    """``(failures, window, lock)`` in seconds from ``ASSAY_LOGIN_ACCOUNT_LIMIT`` (``10/15min``: ten failed
    sign-ins to one account within 15 minutes) and ``ASSAY_LOGIN_ACCOUNT_LOCK`` (``15min``: how long its
    password checks are then refused). ``0`` or ``off`` turns the per-account limit off (None)."""
    text = env.get("ASSAY_LOGIN_ACCOUNT_LIMIT", "").strip().lower() or "10/15min"
    if text in ("0", "off"):
        return None
    count, _, window = text.partition("/")
    if not count.strip().isdigit() or int(count) <= 0 or not window:
        raise ValueError(f"ASSAY_LOGIN_ACCOUNT_LIMIT: {text!r} is not failures/duration (such as 10/15min) or off")
    lock = env.get("ASSAY_LOGIN_ACCOUNT_LOCK", "").strip() or "15min"
    return int(count), _seconds("ASSAY_LOGIN_ACCOUNT_LIMIT", window), _seconds("ASSAY_LOGIN_ACCOUNT_LOCK", lock)
