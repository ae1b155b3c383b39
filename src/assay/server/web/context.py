"""Template context every page needs: what the navigation shows the signed-in user."""

from __future__ import annotations

from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from assay.server.teams.services import pending_invitations_for

    return {
        "nav_is_host": user.is_staff or user.host_memberships.exists(),
        "nav_invitations": pending_invitations_for(user).count(),
    }
