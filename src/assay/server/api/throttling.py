"""Rate limits per scope (``login``, ``submit``), counted per user or, anonymous, per client address.

The counts live in Django's cache, which settings make shared by every server process (the database,
or Redis), so neither a restart nor another gunicorn worker hands out a fresh budget; the address comes
from :func:`assay.server.clientaddr.client_address`, so a forged ``X-Forwarded-For`` does not either.
"""

from __future__ import annotations

from rest_framework import throttling

from assay.server.clientaddr import client_address
from assay.server.read_cache import store


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    def get_ident(self, request) -> str:
        return client_address(request)

    def throttle_success(self) -> bool:
        """DRF's, with the history written in one statement on the database cache (four otherwise, on
        every submit). As before it is read, then written: the count is a rate limit, not a guarantee
        (the submission limits are enforced in the submission's own transaction)."""
        self.history.insert(0, self.now)
        store({self.key: self.history}, self.duration)
        return True
