"""Who may read ``/metrics``: the one rule, asked by the view.

Open to a caller on this machine (a loopback peer, with no proxy header: a request a reverse proxy passed on
from elsewhere carries ``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP``, so it is not taken for local)
and, when ``ASSAY_METRICS_TOKEN`` is set, to whoever sends ``Authorization: Bearer <that token>``.
Everyone else gets 404 when no token is set (from outside, the page does not exist) and 403 when one is
(the page exists; the token is missing or wrong). The figures are not secret per se, but they tell the
queue's load and every route's traffic, which is the operator's business.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest

from assay.server.clientaddr import parse_address
from assay.server.refusals import Refusal

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def check_metrics_reader(request: HttpRequest) -> None:
    """Return if ``request`` may read the metrics, else raise the :class:`Refusal` it gets."""
    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(_bearer(request).encode(), token.encode()):
        return
    if from_this_machine(request):
        return
    if token:
        raise Refusal("forbidden", "Reading the metrics needs the bearer token (ASSAY_METRICS_TOKEN).", 403)
    raise Refusal("not_found", "There is no such page.", 404)  # as any unknown page reads


def from_this_machine(request: HttpRequest) -> bool:
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    peer = parse_address(request.META.get("REMOTE_ADDR", ""))
    return peer is not None and peer.is_loopback


def _bearer(request: HttpRequest) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""
