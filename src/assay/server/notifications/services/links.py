"""Absolute links for e-mails and webhook payloads, which leave the request that could have told the host."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def absolute(view: str, *args) -> str:
    """``ASSAY_SITE_URL`` + the path of a named web view."""
    return settings.SITE_URL.rstrip("/") + reverse(view, args=args)
