"""Team pages: my teams, one team (public to everyone; members, invitations for its members), answering an
invitation."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from assay.server.leaderboards.services.team_page import TeamPage, team_page
from assay.server.teams import services as teams
from assay.server.teams.models import HostTeam, ParticipantTeam, TeamInvitation
from assay.server.teams.services import TeamError

from ..forms import InviteForm, TeamForm
from .common import confirmation, refusal


@login_required
@require_http_methods(["GET", "POST"])
def my_teams(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                team = teams.create_participant_team(
                    request.user, form.cleaned_data["name"], form.cleaned_data["team_url"]
                )
                messages.success(request, f"Team {team.name} created.")
                return redirect("web:team", pk=team.pk)
            except TeamError as exc:
                form.add_error("name", exc.message)
    context = {
        "teams": teams.participant_teams_of(request.user).prefetch_related("members", "participations__challenge"),
        "host_teams": teams.host_teams_of(request.user).prefetch_related("members"),
        "invitations": teams.pending_invitations_for(request.user),
        "form": form,
    }
    return render(request, "web/teams/list.html", context, status=400 if form.errors else 200)


def _team_or_404(request: HttpRequest, pk: int, host: bool):
    model = HostTeam if host else ParticipantTeam
    team = get_object_or_404(model, pk=pk)
    member = teams.is_host(request.user, team) if host else teams.is_member(request.user, team)
    if not member and not request.user.is_staff:
        raise Http404("no such team")
    return team


def _team_page(request: HttpRequest, pk: int, host: bool, public: TeamPage | None = None) -> HttpResponse:
    team = _team_or_404(request, pk, host)
    form = InviteForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                invitation, token = teams.invite(request.user, team, form.cleaned_data["email"])
                link = request.build_absolute_uri(reverse("web:invitation", args=[token]))
                teams.send_invitation(invitation, link)
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return redirect(request.path)
            except TeamError as exc:
                form.add_error("email", exc.message)
    context = {
        "team": team,
        "host": host,
        "memberships": team.memberships.select_related("user").order_by("joined_at"),
        "invitations": teams.team_invitations(team),
        "participations": [] if host else team.participations.select_related("challenge"),
        "challenges": team.challenges.all() if host else [],
        "form": form,
        "page": public,
    }
    return render(request, "web/teams/team.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def team(request: HttpRequest, pk: int) -> HttpResponse:
    """A team's page: public to everyone (members by display name, challenges, public leaderboard rows —
    leaderboards.services.team_page); its members (and staff) also manage it here."""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return _team_page(request, pk, host=False)
    found = get_object_or_404(ParticipantTeam, pk=pk)
    public = team_page(request.user, found)
    if request.user.is_authenticated and (request.user.is_staff or teams.is_member(request.user, found)):
        return _team_page(request, pk, host=False, public=public)
    return render(request, "web/teams/public.html", {"team": found, "page": public})


@login_required
@require_http_methods(["GET", "POST"])
def host_team(request: HttpRequest, pk: int) -> HttpResponse:
    return _team_page(request, pk, host=True)


@login_required
@require_POST
def remove_member(request: HttpRequest, pk: int, user_id: int, kind: str) -> HttpResponse:
    host = kind == "host"
    team = _team_or_404(request, pk, host)
    member = get_object_or_404(get_user_model(), pk=user_id)
    leaving = member.pk == request.user.pk
    ask = confirmation(
        request,
        question=f"Leave {team.name}?" if leaving else f"Remove {member.get_username()} from {team.name}?",
        consequence=(
            "You lose access to the team's submissions and cannot submit for it; a member must invite you again "
            "for you to come back."
            if leaving
            else f"{member.get_username()} loses access to the team's submissions; invite them again to undo this."
        ),
        action="Yes, leave the team" if leaving else "Yes, remove the member",
        back=reverse("web:host-team" if host else "web:team", args=[team.pk]),
    )
    if ask is not None:
        return ask
    try:
        if host:
            teams.remove_host_member(request.user, team, member)
        else:
            teams.remove_member(request.user, team, member)
    except TeamError as exc:
        refusal(request, exc)
        return redirect("web:host-team" if host else "web:team", pk=team.pk)
    if member.pk == request.user.pk:
        messages.success(request, f"You left {team.name}.")
        return redirect("web:teams")
    messages.success(request, f"{member.get_username()} removed from {team.name}.")
    return redirect("web:host-team" if host else "web:team", pk=team.pk)


@login_required
@require_POST
def revoke_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(TeamInvitation, pk=invitation_id)
    try:
        teams.revoke_invitation(request.user, invitation)
        messages.success(request, f"Invitation of {invitation.email} revoked.")
    except TeamError as exc:
        if exc.status == 403:
            raise Http404("no such invitation") from None
        refusal(request, exc)
    host = invitation.host_team_id is not None
    return redirect("web:host-team" if host else "web:team", pk=invitation.team.pk)


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation e-mail links to: accept or decline, signed in with the invited address.
    Anyone with the link sees whom it is for; only that address's owner can answer."""
    inv = teams.invitation_by_token(token)
    if inv is None:
        raise Http404("no such invitation")
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        try:
            if request.POST.get("answer") == "accept":
                teams.accept_invitation(request.user, inv)
                messages.success(request, f"You joined {inv.team.name}.")
                return redirect("web:host-team" if inv.is_host_team else "web:team", pk=inv.team.pk)
            teams.decline_invitation(request.user, inv)
            messages.info(request, f"You declined the invitation to {inv.team.name}.")
            return redirect("web:teams")
        except TeamError as exc:
            refusal(request, exc)
            if exc.code == "not_eligible":
                messages.info(
                    request,
                    f"To join {inv.team.name}, first leave the other team named above (Teams, then that team's page, "
                    f"then Leave), then accept here again; or decline this invitation. It stays open until "
                    f"{inv.expires_at:%Y-%m-%d %H:%M} UTC.",
                )
    addressed = request.user.is_authenticated and inv.email in teams.verified_emails(request.user)
    return render(request, "web/teams/invitation.html", {"invitation": inv, "addressed": addressed})
