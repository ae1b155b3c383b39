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


class ApiToken(models.Model):
    """A personal token for the ``assay`` and ``evalai`` command-line tools (``Authorization: Bearer``).

    Only the SHA-256 of the token is stored, so a leaked database does not leak working tokens; the
    token is shown once, when it is made. Tokens expire (EvalAI's never-expiring tokens end up pasted
    into CI logs) and can be revoked one by one.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"
