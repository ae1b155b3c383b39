"""A real OpenID Connect provider on loopback, for the single sign-on browser test: Authlib's authorization server
(authorization code grant with PKCE, its OpenID Connect extension, its userinfo endpoint) in a small Flask app
served by Werkzeug in a thread. It keeps its client, codes and tokens in memory and signs ID tokens with an RSA
key it publishes at ``/jwks``.

The person who signs in is :attr:`Provider.person`; :attr:`Provider.tamper` makes it answer as a broken or hostile
provider would, through Authlib's own hooks: an ID token signed with a key it does not publish (``signature``),
naming another issuer (``issuer``) or another client (``audience``), or carrying a nonce other than the one the
sign-in sent (``nonce``).
"""

from __future__ import annotations

import html
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.discovery import OpenIDProviderMetadata
from flask import Flask, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

# Authlib refuses plain HTTP unless told; this provider only ever listens on 127.0.0.1.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

KID = "assay-test-key"
TAMPERS = ("signature", "issuer", "audience", "nonce")


@dataclass
class Person:
    sub: str
    email: str
    email_verified: bool = True
    name: str = ""
    preferred_username: str = ""


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile", "email"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"

    @property
    def client_metadata(self) -> dict:
        return {}


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    person: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    provider: Provider | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        if self.provider is not None and self.provider.tamper == "nonce":
            return "a-nonce-from-some-other-sign-in"
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token:
    client: Client
    person: Person
    scope: str
    issued_at: float
    expires_in: int

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> Person:
        return self.person

    def get_client(self) -> Client:
        return self.client


def _claims(person: Person, scope: str) -> UserInfo:
    return UserInfo(
        sub=person.sub,
        email=person.email,
        email_verified=person.email_verified,
        name=person.name,
        preferred_username=person.preferred_username,
    ).filter(scope)


class Provider:
    """The provider, listening on ``127.0.0.1`` at :attr:`issuer` until :meth:`stop`."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.client = Client(client_id, client_secret, redirect_uri)
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.rogue_key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.person: Person | None = None
        self.tamper: str | None = None
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self._server = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def metadata(self) -> dict:
        data = OpenIDProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=f"{self.issuer}/authorize",
            token_endpoint=f"{self.issuer}/token",
            userinfo_endpoint=f"{self.issuer}/userinfo",
            jwks_uri=f"{self.issuer}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=["openid", "profile", "email"],
            token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
            code_challenge_methods_supported=["S256"],
            claims_supported=["sub", "email", "email_verified", "name", "preferred_username"],
        )
        data.validate()
        return dict(data)

    def _app(self) -> Flask:
        provider = self
        app = Flask("assay-test-oidc-provider")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 600}

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, req) -> None:
                data = req.payload.data
                provider.codes[code] = Code(
                    code=code,
                    client_id=req.client.client_id,
                    redirect_uri=req.payload.redirect_uri,
                    scope=req.payload.scope,
                    person=req.user,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    provider=provider,
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                item = provider.codes.get(code)
                return item if item and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> Person:
                return authorization_code.person

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce: str, req) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client):
                return KeySet([provider.rogue_key if provider.tamper == "signature" else provider.key])

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict:
                return {"alg": "RS256", "kid": KID}

            def get_client_claims(self, client: Client) -> dict:
                issuer = provider.issuer + "/some-other-realm" if provider.tamper == "issuer" else provider.issuer
                audience = "some-other-application" if provider.tamper == "audience" else client.client_id
                return {"iss": issuer, "aud": [audience], "exp": int(time.time()) + 300}

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                return _claims(user, scope)

        class BearerTokens(BearerTokenValidator):
            def authenticate_token(self, token_string: str) -> Token | None:
                return provider.tokens.get(token_string)

        class UserInfoAnswer(UserInfoEndpoint):
            def get_issuer(self) -> str:
                return provider.issuer

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                return _claims(user, scope)

            def resolve_private_key(self):
                return KeySet([provider.key])

        def save_token(token: dict, req) -> None:
            provider.tokens[token["access_token"]] = Token(
                req.client, req.user, token["scope"], time.time(), int(token["expires_in"])
            )

        def query_client(client_id: str) -> Client | None:
            return provider.client if client_id == provider.client.client_id else None

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(CodeGrant, [IdToken(require_nonce=False), CodeChallenge(required=True)])
        protector = ResourceProtector()
        protector.register_token_validator(BearerTokens())
        server.register_endpoint(UserInfoAnswer(resource_protector=protector))

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(provider.metadata())

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([provider.key]).as_dict(private=False))

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            person = provider.person
            grant = server.get_consent_grant(end_user=person)  # a bad request is refused before anyone is asked
            if request.method == "GET":
                who = html.escape(person.email if person else "nobody")
                return (
                    "<!doctype html><title>Test IdP</title><h1>Test IdP</h1>"
                    f'<form method="post"><p>Signed in as {who}.</p><button type="submit">Continue</button></form>'
                )
            return server.create_authorization_response(grant=grant, grant_user=person)

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            return server.create_endpoint_response("userinfo")

        return app
