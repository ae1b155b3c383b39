"""Rate limits per scope (``login``, ``submit``), counted per user or, anonymous, per client address.

The counts live in Django's cache, which settings make shared by every server process (the database,
or Redis), so neither a restart nor another gunicorn worker hands out a fresh budget; the address comes
from :func:`assay.server.clientaddr.client_address`, so a forged ``X-Forwarded-For`` does not either.
"""

from __future__ import annotations

from rest_framework import throttling

from assay.server.clientaddr import client_address


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    def get_ident(self, request) -> str:
        return client_address(request)
