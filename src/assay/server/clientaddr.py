"""The client's address: the one place that decides whether ``X-Forwarded-For`` counts.

Anyone can send ``X-Forwarded-For``, so trusting it by default lets a client pick a new address per
request (and with it a fresh login-throttle budget). It counts only behind proxies the operator names
in ``ASSAY_TRUSTED_PROXIES``: a number of hops (each trusted proxy appends the address it saw) or a
list of proxy addresses/CIDRs. The API's throttles and allauth's rate limits both call :func:`client_address`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """Off (``hops == 0`` and no networks), a hop count, or the proxies' networks."""

    hops: int = 0
    networks: tuple[Network, ...] = ()

    def trusts(self, hop: int, address: Address) -> bool:
        """Whether the ``hop``-th address from the server (0 = the peer) is a proxy to look behind."""
        if self.networks:
            return any(address in net for net in self.networks)
        return hop < self.hops


def parse_trusted_proxies(value: str) -> TrustedProxies:
    """``""``/``0``: off; ``2``: two proxy hops; ``10.0.0.0/8,127.0.0.1``: those proxies. Bad values fail at start."""
    value = (value or "").strip()
    if not value or value == "0":
        return TrustedProxies()
    if value.isdigit():
        return TrustedProxies(hops=int(value))
    networks = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"ASSAY_TRUSTED_PROXIES: {part!r} is neither a number of proxy hops nor an address or CIDR"
            ) from None
    return TrustedProxies(networks=tuple(networks))


def parse_address(text: str) -> Address | None:
    """An address as a proxy writes it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``), else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(request) -> str:
    """The address throttles count and logs show. Takes a Django ``HttpRequest`` or a DRF ``Request``.

    Walks from the peer (``REMOTE_ADDR``) leftwards through ``X-Forwarded-For`` while the current hop is a
    trusted proxy; the first untrusted (or last readable) address is the client. Unreadable entries stop
    the walk, so a forged value can never become the address.
    """
    meta = request.META
    trusted: TrustedProxies = getattr(settings, "TRUSTED_PROXIES", TrustedProxies())
    peer = parse_address(meta.get("REMOTE_ADDR", ""))
    if peer is None:
        return "unknown"
    address = peer
    forwarded = [p for p in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    for hop, entry in enumerate(reversed(forwarded)):
        if not trusted.trusts(hop, address):
            break
        before = parse_address(entry)
        if before is None:
            break
        address = before
    return str(address)
