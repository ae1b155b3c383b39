"""Accounts: Django's user plus the profile fields EvalAI challenges may require."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    """Who a user is beyond login; ``require_complete_profile`` challenges need every field."""

    REQUIRED_FOR_COMPLETE = (
        "affiliation",
        "address_street",
        "address_city",
        "address_state",
        "address_country",
    )

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    affiliation = models.CharField(max_length=200, blank=True)
    address_street = models.CharField(max_length=200, blank=True)
    address_city = models.CharField(max_length=100, blank=True)
    address_state = models.CharField(max_length=100, blank=True)
    address_country = models.CharField(max_length=100, blank=True)
    github_url = models.URLField(blank=True)
    google_scholar_url = models.URLField(blank=True)
    linkedin_url = models.URLField(blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    @property
    def is_complete(self) -> bool:
        user = self.user
        return bool(user.first_name and user.last_name) and all(
            getattr(self, f).strip() for f in self.REQUIRED_FOR_COMPLETE
        )
