"""Teams: your participant and host teams, creating one, and inviting people by e-mail."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.teams import services as teams

from .base import ApiView, Pages, not_found


class TeamIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    team_url = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class InviteIn(serializers.Serializer):
    email = serializers.CharField(max_length=254)


class TeamMemberOut(serializers.Serializer):
    username = serializers.CharField()
    status = serializers.CharField()


class TeamOut(serializers.Serializer):
    """What :func:`team_data` answers (described for the OpenAPI schema; the views build the dicts)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    team_url = serializers.CharField()
    kind = serializers.ChoiceField(["host", "participant"])
    created_by = serializers.CharField(allow_null=True)
    members = TeamMemberOut(many=True)


class InvitationOut(serializers.Serializer):
    """An invitation as the invitations endpoints answer it (for the OpenAPI schema)."""

    id = serializers.IntegerField()
    email = serializers.CharField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()


def team_data(team, host: bool) -> dict:
    members = team.memberships.select_related("user").order_by("pk")
    return {
        "id": team.pk,
        "name": team.name,
        "team_url": team.team_url,
        "kind": "host" if host else "participant",
        "created_by": team.created_by.get_username() if team.created_by_id else None,
        "members": [{"username": m.user.get_username(), "status": getattr(m, "status", "active")} for m in members],
    }


class TeamListView(ApiView):
    host = False
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(responses={200: TeamOut(many=True)}, summary="Your teams")
    def get(self, request: Request) -> Response:
        qs = teams.host_teams_of(request.user) if self.host else teams.participant_teams_of(request.user)
        return self.paginate(request, qs.order_by("pk"), lambda t: team_data(t, self.host))

    @extend_schema(request=TeamIn, responses={201: TeamOut}, summary="Create a team")
    def post(self, request: Request) -> Response:
        data = TeamIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if self.host:
            team = teams.create_host_team(v["name"], request.user)
        else:
            team = teams.create_participant_team(request.user, v["name"], v["team_url"])
        return Response(team_data(team, self.host), status=201)


class HostTeamListView(TeamListView):
    host = True


def _my_team(user, team_id: int, host: bool):
    qs = teams.host_teams_of(user) if host else teams.participant_teams_of(user)
    team = qs.filter(pk=team_id).first()
    if team is None:
        raise not_found("team of yours")
    return team


class TeamInvitationsView(ApiView):
    host = False
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(request=InviteIn, responses={201: InvitationOut}, summary="Invite someone by e-mail")
    def post(self, request: Request, team_id: int) -> Response:
        team = _my_team(request.user, team_id, self.host)
        data = InviteIn(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, token = teams.invite(request.user, team, data.validated_data["email"])
        teams.send_invitation(invitation, _invitation_link(request, token))
        return Response(
            {"id": invitation.pk, "email": invitation.email, "status": invitation.status,
             "expires_at": invitation.expires_at},
            status=201,
        )  # fmt: skip

    @extend_schema(responses={200: InvitationOut(many=True)}, summary="A team's invitations")
    def get(self, request: Request, team_id: int) -> Response:
        team = _my_team(request.user, team_id, self.host)
        rows = teams.team_invitations(team)
        return self.paginate(
            request,
            rows,
            lambda i: {"id": i.pk, "email": i.email, "status": i.status, "expires_at": i.expires_at},
        )


class HostTeamInvitationsView(TeamInvitationsView):
    host = True


def _invitation_link(request: Request, token: str) -> str:
    for name in ("web:invitation", "invitation", "team-invitation", "web:team-invitation"):
        try:
            return request.build_absolute_uri(reverse(name, args=[token]))
        except NoReverseMatch:
            continue
    return request.build_absolute_uri(f"/invitations/{token}/")
