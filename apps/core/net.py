"""Client address of a request, believing X-Forwarded-For only from trusted proxies."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.http import HttpRequest

from apps.core.conf import core_settings


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _is_trusted(addr: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The first address, walking X-Forwarded-For from the right, that is not a trusted proxy.

    Walking from the right matters: a client can put anything on the left of the header.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    networks = _networks(tuple(core_settings.TRUSTED_PROXIES))
    if not networks or remote is None or not _is_trusted(remote, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return hops[0] if hops else remote
