"""Accounts: signing in for API clients, ``whoami``, personal API tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.accounts.login_throttle import password_login
from assay.server.accounts.models import ApiToken
from assay.server.accounts.tokens import DEFAULT_DAYS, MAX_DAYS, create_token, revoke_token
from assay.server.api.throttling import ScopedRateThrottle
from assay.server.refusals import Refusal
from assay.server.teams import services as teams

from .base import ApiView, Pages, not_found


class LoginIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=1000, trim_whitespace=False)
    token_name = serializers.CharField(max_length=100, required=False, default="assay CLI")
    days = serializers.IntegerField(min_value=0, max_value=MAX_DAYS, required=False, default=DEFAULT_DAYS)


class TokenIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    days = serializers.IntegerField(
        min_value=0, max_value=MAX_DAYS, required=False, default=DEFAULT_DAYS, help_text="0: never expires."
    )


class TokenOut(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]


class NewTokenOut(TokenOut):
    """A token just made: the only answer that holds the token itself."""

    token = serializers.CharField(help_text="The token (``ap_…``): shown once, stored hashed.")

    class Meta(TokenOut.Meta):
        fields = ["token", *TokenOut.Meta.fields]


class TeamRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class WhoamiOut(serializers.Serializer):
    """What :func:`whoami_data` answers; ``token``: the token this request came with (not with a session)."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    is_staff = serializers.BooleanField()
    host_teams = TeamRefOut(many=True)
    participant_teams = TeamRefOut(many=True)
    token = TokenOut(required=False)


class LoginOut(NewTokenOut):
    """A new token and whose it is."""

    user = WhoamiOut()

    class Meta(NewTokenOut.Meta):
        fields = [*NewTokenOut.Meta.fields, "user"]


def new_token_data(row: ApiToken, token: str) -> dict:
    return {"token": token, **TokenOut(row).data}


def whoami_data(user) -> dict:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "is_staff": user.is_staff,
        "host_teams": [{"id": t.pk, "name": t.name} for t in teams.host_teams_of(user)],
        "participant_teams": [{"id": t.pk, "name": t.name} for t in teams.participant_teams_of(user)],
    }


class LoginView(ApiView):
    """Exchange a username and password for a personal API token (throttled per client address and per account)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=LoginIn, responses={201: LoginOut}, summary="Log in and get an API token")
    def post(self, request: Request) -> Response:
        data = LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = password_login(request._request, v["username"], v["password"])  # 429 while the account is locked
        if user is None or not user.is_active:
            raise Refusal("bad_credentials", "wrong username or password", 401)
        row, token = create_token(user, v["token_name"], v["days"], sign_in=True)
        return Response({**new_token_data(row, token), "user": whoami_data(user)}, status=201)


class WhoamiView(ApiView):
    @extend_schema(responses={200: WhoamiOut}, summary="Who this token or session belongs to")
    def get(self, request: Request) -> Response:
        data = whoami_data(request.user)
        if isinstance(request.auth, ApiToken):
            data["token"] = TokenOut(request.auth).data
        return Response(data)


class TokenListView(ApiView):
    # what self.paginate answers: drf-spectacular documents the list response as this page
    pagination_class = Pages

    @extend_schema(responses={200: TokenOut(many=True)}, summary="Your API tokens (never the tokens themselves)")
    def get(self, request: Request) -> Response:
        return self.paginate(request, ApiToken.objects.filter(user=request.user), TokenOut)

    @extend_schema(request=TokenIn, responses={201: NewTokenOut}, summary="Create a token (shown once)")
    def post(self, request: Request) -> Response:
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        row, token = create_token(request.user, data.validated_data["name"], data.validated_data["days"])
        return Response(new_token_data(row, token), status=201)


class TokenDetailView(ApiView):
    @extend_schema(responses={204: None}, summary="Revoke a token")
    def delete(self, request: Request, token_id: int) -> Response:
        row = ApiToken.objects.filter(pk=token_id, user=request.user).first()
        if row is None:
            raise not_found("token")
        revoke_token(request.user, row)
        return Response(status=204)
