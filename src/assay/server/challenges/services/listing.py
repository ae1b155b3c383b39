"""Who may see which challenge in listings."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from ..models import Challenge


def visible_challenges(user) -> QuerySet[Challenge]:
    """Published, approved, enabled challenges for everyone; plus a host's own; all for staff."""
    qs = Challenge.objects.select_related("host_team").annotate(phase_count=Count("phases"))
    if getattr(user, "is_staff", False):
        return qs
    public = Q(published=True, approved_by_admin=True, is_disabled=False)
    if getattr(user, "is_authenticated", False):
        return qs.filter(public | Q(host_team__members=user)).distinct()
    return qs.filter(public)
