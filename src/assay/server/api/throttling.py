"""Rate limits per scope (``login``, ``submit``), counted per user or, anonymous, per client address.

The counts live in Django's cache, which settings make shared by every server process (the database,
or Redis), so neither a restart nor another gunicorn worker hands out a fresh budget; the address comes
from :func:`assay.server.clientaddr.client_address`, so a forged ``X-Forwarded-For`` does not either.

A rate ``N/period`` is a bucket of ``N`` requests that refills one request every ``period / N`` (the
generic cell rate algorithm): a client may send ``N`` at once, then one per ``period / N``; refused, it is
told in ``Retry-After`` when the next one fits. The cache holds one number per client and scope, the
*theoretical arrival time* (when the bucket is full again), so a check costs the same at ``30/min`` as at
``1000000/min``. DRF's own throttle kept every request's time of the last period instead, read and
written whole per check: at the benchmark's rate thousands of floats per submit.
"""

from __future__ import annotations

import math

from rest_framework import throttling

from assay.server.clientaddr import client_address
from assay.server.read_cache import store

MICROS = 1_000_000


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    """DRF's scoped throttle (``view.throttle_scope``, the rates of ``DEFAULT_THROTTLE_RATES``), counted as
    a bucket (module docstring). As before the count is read, then written: it is a rate limit, not a
    guarantee (two requests at the same instant may both pass; the submission limits are enforced in the
    submission's own transaction)."""

    def get_ident(self, request) -> str:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        if self.num_requests <= 0:  # "0/min": nothing passes, as in DRF
            self._wait = float(self.duration)
            return False
        now = int(self.timer() * MICROS)
        window = self.duration * MICROS
        spacing = window // self.num_requests  # rounded down: N at once always fit in the window
        arrival = max(_arrival(self.cache.get(self.key), now, spacing), now) + spacing
        if arrival - now > window:
            self._wait = (arrival - now - window) / MICROS
            return False
        # kept for the whole period (the bucket is full again by then at the latest, and a missing entry then
        # means the same as the stored one): not just until the refill, which would tie the entry's life in the
        # cache's clock to this throttle's ``timer`` to the second
        store({self.key: arrival}, max(1, math.ceil(self.duration)))
        return True

    def wait(self) -> float:
        """Seconds until the next request fits (DRF rounds it up into ``Retry-After``)."""
        return self._wait


def _arrival(held: object, now: int, spacing: int) -> int:
    """The stored theoretical arrival time, in microseconds (``now`` when none is stored); DRF's request log
    (a list of times, from before this throttle) as the bucket its requests would have left."""
    if isinstance(held, int):
        return held
    if not isinstance(held, list):
        return now
    arrival = 0
    for t in sorted(t for t in held if isinstance(t, float)):
        arrival = max(arrival, int(t * MICROS)) + spacing
    return arrival
