"""The ID token checks of Assay's OpenID Connect sign-in (:class:`assay.server.accounts.oidc.VerifyingAdapter`), one
token at a time against a real provider's published keys (:mod:`tests.oidc_provider`); the browser test
(tests/browser/test_oidc_sign_in.py) runs the whole sign-in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import RequestFactory
from joserfc import jwt
from joserfc.jwk import RSAKey

from assay.server.accounts.oidc import REASONS, RefusedToken, VerifyingAdapter
from tests.oidc_provider import KID, Provider

pytestmark = pytest.mark.django_db

CLIENT = "assay-web"


@pytest.fixture(scope="module")
def idp():
    provider = Provider(CLIENT, "secret", "http://testserver/accounts/oidc/testidp/login/callback/")
    yield provider
    provider.stop()


def _adapter(idp, nonce: str | None = "n-1") -> VerifyingAdapter:
    adapter = VerifyingAdapter(RequestFactory().get("/"), "testidp")
    adapter._openid_config = idp.metadata()
    adapter.nonce = nonce
    return adapter


def _token(idp, key=None, header: dict | None = None, **claims) -> str:
    now = int(time.time())
    body = {"iss": idp.issuer, "aud": CLIENT, "sub": "u-1", "iat": now, "exp": now + 300, "nonce": "n-1", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(header or {"alg": "RS256", "kid": KID}, body, key or idp.key)


def _hmac_token(header: dict, claims: dict, secret: bytes) -> str:
    """A token "signed" with HMAC keyed by the provider's public key, which any library of today refuses to make."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signed = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return signed + "." + part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def _refused(idp, token: str, nonce: str | None = "n-1") -> str:
    with pytest.raises(RefusedToken) as caught:
        _adapter(idp, nonce)._decode_id_token(SimpleNamespace(client_id=CLIENT), token)
    assert str(caught.value) == REASONS[caught.value.reason]
    return caught.value.reason


def test_a_good_token_passes_once(idp):
    token = _token(idp, jti="once")
    claims = _adapter(idp)._decode_id_token(SimpleNamespace(client_id=CLIENT), token)
    assert claims["sub"] == "u-1" and claims["nonce"] == "n-1"
    assert _refused(idp, token) == "replayed"


def test_each_broken_token_is_refused_for_its_reason(idp):
    other = RSAKey.generate_key(2048)
    public_pem = idp.key.as_pem(private=False)
    assert _refused(idp, _token(idp, key=other)) == "signature"
    assert _refused(idp, _token(idp, header={"alg": "RS256", "kid": "not-published"})) == "signature"
    assert _refused(idp, _token(idp, header={"alg": "RS256"})) == "malformed"  # no kid to look the key up by
    confused = _hmac_token({"alg": "HS256", "kid": KID}, {"iss": idp.issuer, "aud": CLIENT, "sub": "u-1"}, public_pem)
    assert _refused(idp, confused) == "signature"  # an HMAC keyed with the public key
    assert _refused(idp, "not.a.token") == "malformed"
    assert _refused(idp, _token(idp, iss="http://elsewhere.example")) == "issuer"
    assert _refused(idp, _token(idp, aud="another-app")) == "audience"
    assert _refused(idp, _token(idp, exp=int(time.time()) - 3600)) == "expired"
    assert _refused(idp, _token(idp, sub=None)) == "malformed"
    assert _refused(idp, _token(idp, nonce=None)) == "nonce"
    assert _refused(idp, _token(idp, nonce="n-2")) == "nonce"
    assert _refused(idp, _token(idp), nonce=None) == "nonce"  # a callback no sign-in of this browser started


def test_the_sign_in_routes_answer_a_configured_provider_only(idp, client, settings):
    from assay.server.accounts.config import oidc_providers

    env = {"ASSAY_OIDC_PROVIDERS": "testidp", "ASSAY_OIDC_TESTIDP_ISSUER": idp.issuer,
           "ASSAY_OIDC_TESTIDP_CLIENT_ID": CLIENT, "ASSAY_OIDC_TESTIDP_CLIENT_SECRET": "secret"}  # fmt: skip
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": oidc_providers(env)}}
    assert client.get("/accounts/oidc/nope/login/").status_code == 404
    assert client.get("/accounts/oidc/nope/login/callback/?code=x&state=y").status_code == 404
    assert client.get("/accounts/oidc/testidp/login/").status_code == 200  # asks before leaving the site
    away = client.post("/accounts/oidc/testidp/login/")
    assert away.status_code == 302 and away["Location"].startswith(f"{idp.issuer}/authorize?")
    assert "nonce=" in away["Location"] and "code_challenge=" in away["Location"]
    refused = client.get("/accounts/oidc/testidp/login/callback/?code=x&state=not-a-sign-in-of-this-browser")
    assert refused.status_code == 401 and b"Sign-in with Testidp failed" in refused.content
    assert b"belongs to no sign-in started in this browser" in refused.content
    client.get("/accounts/oidc/testidp/login/")
    state = parse_qs(urlsplit(client.post("/accounts/oidc/testidp/login/")["Location"]).query)["state"][0]
    denied = client.get(f"/accounts/oidc/testidp/login/callback/?error=login_required&state={state}")
    assert denied.status_code == 401 and b"Testidp refused the sign-in (login_required)." in denied.content
