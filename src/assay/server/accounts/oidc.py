"""OpenID Connect sign-in that checks the ID token itself: its signature, issuer, audience, expiry and nonce.

allauth's ``openid_connect`` provider skips the signature when the token comes straight from the token endpoint
(OIDC Core 3.1.3.7 allows it over TLS) and sends no nonce. Assay signs people in from providers run by
universities and hospitals, sometimes behind proxies that end TLS early, so it checks every ID token against
the provider's published keys and binds it to the browser's sign-in with a one-time nonce kept in allauth's
state. These two views take the place of allauth's at the same addresses (``urls.py`` lists them first).

A refused token raises :class:`OAuth2Error` with a message for people; the adapter
(:class:`~.social_adapter.SocialAccountAdapter`) shows it on allauth's error page.
"""

from __future__ import annotations

import secrets

import jwt
from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base.utils import respond_to_login_on_get
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, re_path

#: The reasons a refused ID token is shown with, by what failed (the sign-in page names the provider).
REASONS = {
    "signature": "its ID token is not signed with any of the provider's published keys",
    "issuer": "its ID token was issued by someone other than the provider",
    "audience": "its ID token was meant for another application, not this site",
    "expired": "its ID token has expired (check the clocks of this server and the provider)",
    "nonce": "its ID token belongs to another sign-in (the one-time code does not match)",
    "malformed": "its ID token could not be read",
    "replayed": "its ID token was already used for a sign-in",
}


#: The signature algorithms an ID token may name: a provider signs with its private key and publishes the public one.
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class RefusedToken(OAuth2Error):
    """An ID token Assay does not accept; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(REASONS[reason])
        self.reason = reason


class VerifyingAdapter(OpenIDConnectOAuth2Adapter):
    """allauth's OIDC adapter, with the ID token's signature always checked and its nonce compared."""

    nonce: str | None = None

    def _decode_id_token(self, app: SocialApp, id_token: str) -> dict:
        config = self.openid_config
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise RefusedToken("malformed") from None
        if header.get("alg") not in ASYMMETRIC:  # "none", or an HMAC keyed with the public key ("alg confusion")
            raise RefusedToken("signature")
        try:
            alg, key = jwtkit.fetch_key(id_token, config["jwks_uri"], jwtkit.lookup_kid_jwk)
        except (KeyError, OAuth2Error):  # no kid, or a kid the provider does not publish
            raise RefusedToken("signature" if header.get("kid") else "malformed") from None
        try:
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=[alg],
                issuer=config["issuer"],
                audience=app.client_id,
                options={"require": ["iss", "aud", "exp", "sub"]},
            )
        except jwt.InvalidSignatureError:
            raise RefusedToken("signature") from None
        except jwt.InvalidIssuerError:
            raise RefusedToken("issuer") from None
        except jwt.InvalidAudienceError:
            raise RefusedToken("audience") from None
        except jwt.ExpiredSignatureError:
            raise RefusedToken("expired") from None
        except jwt.PyJWTError:
            raise RefusedToken("malformed") from None
        if not self.nonce or not secrets.compare_digest(str(claims.get("nonce", "")), self.nonce):
            raise RefusedToken("nonce")
        try:
            jwtkit.verify_jti(claims)
        except OAuth2Error:
            raise RefusedToken("replayed") from None
        return claims


class _LoginView(OAuth2LoginView):
    """allauth's login redirect, with a fresh nonce in the request and in the stashed state."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = self.get_provider()
        response = respond_to_login_on_get(request, provider)
        if response:
            return response
        options = provider.get_redirect_from_request_kwargs(request)
        nonce = secrets.token_urlsafe(32)
        options["auth_params"] = {**options.get("auth_params", {}), "nonce": nonce}
        return provider.redirect(request, nonce=nonce, **options)


class _CallbackView(OAuth2CallbackView):
    """allauth's callback; the nonce of the sign-in the browser started is handed to the adapter."""

    def _get_state(self, request: HttpRequest, provider):
        state, response = super()._get_state(request, provider)
        self.adapter.nonce = (state or {}).get("nonce")  # type: ignore[attr-defined]
        return state, response


@login_not_required
def login(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        return _LoginView.adapter_view(VerifyingAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None


@login_not_required
def callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        return _CallbackView.adapter_view(VerifyingAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None


#: Mounted under ``accounts/`` before allauth's own URLs, with allauth's names (reverse() gives the same paths).
urlpatterns = [
    re_path(
        r"^oidc/(?P<provider_id>[^/]+)/login/$",
        login,
        name="openid_connect_login",
    ),
    path("oidc/<str:provider_id>/login/callback/", callback, name="openid_connect_callback"),
]
