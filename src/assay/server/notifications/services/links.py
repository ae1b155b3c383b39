"""Absolute links for e-mails and webhook payloads, which leave the request that could have told the host."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


def absolute(view: str, *args) -> str:
    """``ASSAY_SITE_URL`` + the path of a named web view."""
    return settings.SITE_URL.rstrip("/") + _path(
        get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), view, args
    )


@lru_cache(maxsize=4096)
def _path(urlconf: object, prefix: str, view: str, args: tuple) -> str:
    """``reverse(view, args)``, remembered per URL conf and script prefix (every result's e-mail reverses two
    paths; Django's ``reverse`` walks its resolver each time, a tenth of that e-mail's CPU)."""
    return reverse(view, urlconf=urlconf, args=args)
