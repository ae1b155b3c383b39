"""allauth hooks: who may sign up, and the verification link printed where a demo can see it."""

from __future__ import annotations

import logging

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.conf import settings

from assay.server.clientaddr import client_address

from . import login_throttle
from .config import CONSOLE

log = logging.getLogger("assay.accounts")


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """``ASSAY_SIGNUP_OPEN=0`` closes sign-up (accounts then come from OIDC or the admin)."""
        return getattr(settings, "SIGNUP_OPEN", True)

    def get_client_ip(self, request) -> str:
        """allauth's rate limits count per address: the same one the API's throttles use."""
        return client_address(request)

    def authenticate(self, request, **credentials):
        """The sign-in form's password check, under the per-account limit (:mod:`.login_throttle`): a
        locked account gets the reason on the form, and its password is not checked."""
        key = login_throttle.account_key(credentials.get("username") or credentials.get("email") or "")
        try:
            login_throttle.refuse_if_locked(key)
        except login_throttle.AccountLocked as exc:
            raise forms.ValidationError(exc.message[:1].upper() + exc.message[1:] + ".", code=exc.code) from None
        user = super().authenticate(request, **credentials)
        login_throttle.record(key, user is not None)
        return user

    def send_confirmation_mail(self, request, emailconfirmation, signup) -> None:
        super().send_confirmation_mail(request, emailconfirmation, signup)
        if settings.EMAIL_BACKEND == CONSOLE:
            # The console backend prints the whole message; this one line is easy to find in a demo's log.
            url = self.get_email_confirmation_url(request, emailconfirmation)
            print(f"E-mail verification link for {emailconfirmation.email_address.email}: {url}", flush=True)
