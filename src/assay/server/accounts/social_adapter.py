"""allauth's single sign-on hooks: which provider answers create an account, and a refusal people can act on."""

from __future__ import annotations

import re

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.helpers import render_authentication_error
from django.http import HttpRequest

from .oidc import RefusedToken


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request: HttpRequest, sociallogin) -> None:
        """A first sign-in needs an e-mail address the provider vouches for: Assay's accounts are known by
        verified addresses (invitations, host teams), and one the provider did not check could be anybody's.
        A known account signs in by its provider id (``sub``), whatever the address says today."""
        if sociallogin.is_existing:
            return
        addresses = sociallogin.email_addresses
        if addresses and not any(a.verified for a in addresses):
            provider = sociallogin.account.get_provider()
            reason = (
                f"{provider.name} has not verified the e-mail address {addresses[0].email}, so no account was"
                f" created with it. Verify the address with {provider.name} and sign in again, or sign up here"
                " with a password."
            )
            raise ImmediateHttpResponse(
                render_authentication_error(
                    request, provider, error="unverified_email", extra_context={"reason": reason}
                )
            )

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None) -> None:
        """Say why a sign-in failed when Assay knows (a refused ID token, a sign-in this browser did not start,
        an error the provider reported); the page adds what to do next."""
        if extra_context is not None and "reason" not in extra_context:
            reason = _reason(request, provider.name, exception, extra_context)
            if reason:
                extra_context["reason"] = reason
        super().on_authentication_error(request, provider, error, exception, extra_context)


def _reason(request: HttpRequest, name: str, exception, context: dict) -> str | None:
    if isinstance(exception, RefusedToken):
        return f"{name}'s answer was refused: {exception}."
    if exception is None and "state_id" in context and "state" not in context:
        return (
            f"This answer from {name} belongs to no sign-in started in this browser, or the sign-in took too long."
            " Start again from the sign-in page, in one browser window."
        )
    code = request.GET.get("error", "")
    if exception is None and re.fullmatch(r"[a-z_]{1,40}", code):
        return f"{name} refused the sign-in ({code})."
    return None
