"""The one place that says which address a request came from.

Behind the TLS-terminating proxy the README asks for, ``REMOTE_ADDR`` is the proxy's address, so
every per-IP rule would count the whole shop as one shopper. The proxy appends the address it saw
to ``X-Forwarded-For``; we believe that header only as far as the hops that appended it are ours:

* ``TRUSTED_PROXIES`` (default: loopback and the private ranges, as Rails does): walking the chain
  ``X-Forwarded-For + [REMOTE_ADDR]`` from the right, every trusted proxy is skipped and the first
  address that is not one is the client. A peer that is not a trusted proxy is the client itself,
  whatever header it sends, so a forged ``X-Forwarded-For`` counts against the sender.
* ``TRUSTED_PROXY_COUNT`` (when set, instead): exactly that many proxies stand in front of the
  application, so the client is the N-th address from the right of ``X-Forwarded-For``.

Every rate limit (django-ratelimit's ``key="ip"`` through ``RATELIMIT_IP_META_KEY``, allauth's
limits through the account adapter, the admin sign-in limit), every per-IP rule and
``Order.client_ip`` use :func:`client_ip`; nothing else reads ``REMOTE_ADDR`` or
``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

_CACHED = "_kameng_client_ip"


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a header entry (``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443``) or None."""
    value = value.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address) -> bool:
    return any(address in network for network in settings.TRUSTED_PROXIES)


def resolve(remote_addr: str, forwarded_for: str = "") -> str | None:
    """The client's address, given the peer's and the X-Forwarded-For header (pure, for tests)."""
    peer = _parse(remote_addr or "")
    if peer is None:
        return None
    hops = [_parse(part) for part in forwarded_for.split(",")] if forwarded_for.strip() else []
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        # The last `count` hops are our proxies: the peer and the count-1 entries it forwarded. The
        # client is the entry before them; a shorter header means the request skipped a proxy.
        if len(hops) < count:
            return str(peer)
        client = hops[-count]
        return str(client) if client is not None else str(peer)
    client = peer
    while _trusted(client) and hops:
        previous = hops.pop()
        if previous is None:  # garbage in the header: the last hop we could read stays the answer
            break
        client = previous
    return str(client)


def client_ip(request) -> str | None:
    """The address of the browser (or gateway) behind ``request``, as a string; cached per request."""
    cached = getattr(request, _CACHED, None)
    if cached is None:
        cached = resolve(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", "")) or ""
        setattr(request, _CACHED, cached)
    return cached or None


def ratelimit_key(request) -> str:
    """``RATELIMIT_IP_META_KEY`` for django-ratelimit's ``key="ip"``."""
    return client_ip(request) or "unknown"
