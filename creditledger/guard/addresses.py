"""The client's network address, as the lockout and the ledger see it."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, unless it is a trusted proxy (settings.TRUSTED_PROXIES).

    Then X-Forwarded-For is read from the right: each trusted proxy appended the address it
    saw, so the first hop from the right that is not a trusted proxy is the client. Hops
    further left were written by the client and prove nothing. A hop that is not an
    address means the chain is broken: the proxy's own address is used.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    remote_ip = _parse(remote)
    if not trusted or remote_ip is None or not any(remote_ip in net for net in trusted):
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_ip = _parse(hop)
        if hop_ip is None:
            return remote
        if not any(hop_ip in net for net in trusted):
            return str(hop_ip)
    return remote
