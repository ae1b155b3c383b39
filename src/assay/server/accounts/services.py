"""Account rules: every user's profile, and whether it is complete enough for a challenge."""

from __future__ import annotations

from .models import Profile


def profile_of(user) -> Profile:
    """The user's profile, made on first use for users that existed before profiles did."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def missing_profile_fields(user) -> list[str]:
    """Human names of the fields a ``require_complete_profile`` challenge still needs from ``user``."""
    profile = profile_of(user)
    names = {
        "affiliation": "affiliation",
        "address_street": "street address",
        "address_city": "city",
        "address_state": "state or region",
        "address_country": "country",
    }
    missing = []
    if not user.first_name.strip():
        missing.append("first name")
    if not user.last_name.strip():
        missing.append("last name")
    missing.extend(label for field, label in names.items() if not getattr(profile, field).strip())
    return missing
