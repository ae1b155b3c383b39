"""The public challenge list: ongoing, upcoming or past, narrowed by a search, a tag and a domain."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from ..models import Challenge
from .listing import visible_challenges

WHEN = ("ongoing", "upcoming", "past", "all")


def browse(user, *, when: str = "ongoing", q: str = "", tag: str = "", domain: str = "") -> QuerySet[Challenge]:
    """Challenges ``user`` may see. Unknown filter values are ignored rather than refused: this is a
    page anyone can type a URL for."""
    qs = visible_challenges(user)
    now = timezone.now()
    if when == "ongoing":
        qs = qs.filter(start_date__lte=now, end_date__gte=now)
    elif when == "upcoming":
        qs = qs.filter(start_date__gt=now).order_by("start_date", "id")
    elif when == "past":
        qs = qs.filter(end_date__lt=now).order_by("-end_date", "id")
    q = " ".join(q.split())[:100]
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(short_description__icontains=q) | Q(host_team__name__icontains=q))
    tag = tag.strip()[:50]
    if tag:
        # JSON "contains" is not supported on every backend; tags are few, so match the stored text.
        qs = qs.filter(tags__icontains=f'"{tag}"')
    if domain in Challenge.Domain.values:
        qs = qs.filter(domain=domain)
    return qs


def all_tags(user) -> list[str]:
    """Tags of the challenges ``user`` may see, for the filter menu."""
    tags: set[str] = set()
    for row in visible_challenges(user).values_list("tags", flat=True)[:2000]:
        tags.update(t for t in row or [] if isinstance(t, str))
    return sorted(tags, key=str.lower)
