"""Account rules: every user's profile, whether it is complete enough for a challenge, and whether the
account's e-mail address is verified enough for API tokens and hosting."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

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


def verification_required() -> bool:
    """Whether this server wants verified e-mail addresses (allauth's ``mandatory``, Assay's default)."""
    return getattr(settings, "ACCOUNT_EMAIL_VERIFICATION", "none") == "mandatory"


def has_verified_email(user) -> bool:
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user_id=user.pk, verified=True).exists()


def unverified_email_refusal(user, doing: str) -> str | None:
    """Why ``user`` may not ``doing`` yet (their e-mail address is unverified), or None when they may.

    The web login stops such accounts already (allauth); the API logins, token issue, host-team and
    challenge creation ask here, so an account with a throwaway address gets no API token and cannot
    host (run its own evaluation code) until the address is proven.
    """
    if not verification_required() or has_verified_email(user):
        return None
    address = user.email or "your address"
    return (
        f"verify your e-mail address before you {doing}: open the verification link sent to {address}."
        f" No link, or it expired? Sign in on the website ({reverse('account_login')}) and a new one is sent."
    )
