"""Where a request came from when reverse proxies stand in front of the web process.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are headers, so any client can send them. They
count only on a connection from an address in ``AISYSTEM_TRUSTED_PROXIES`` (default: none, and
then they are dropped). Each trusted proxy appends the address it was connected from, so the
client is the right-most address of the chain that is not a trusted proxy; whatever a client
wrote further left is ignored. The scheme is the one the client used to reach the first trusted
proxy, counted the same way from the right. This is the rule of nginx's ``real_ip_recursive``.

Hand-written (one function and a middleware) because the ready-made pieces trust the wrong
thing: daphne's ``--proxy-headers`` takes the left-most address from every peer, which is the
one a client forges; django-xff trusts a number of hops without checking the proxies'
addresses; django-ipware matches addresses as string prefixes. Django's own
``SECURE_PROXY_SSL_HEADER`` is set only when proxies are trusted (settings.py), and this
middleware, first in ``MIDDLEWARE``, leaves it a single value from a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ForwardedOrigin:
    """``address``: the client's address; ``scheme``: "http"/"https" as the client used it,
    or None when no trusted proxy said; ``hops``: how many trusted proxies the request passed."""

    address: str
    scheme: str | None
    hops: int


def ip_parse(text: str) -> Address | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``),
    IPv4-mapped IPv6 as IPv4; None for anything else (``unknown``, a name, garbage)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def address_trusted(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def forwarded_origin(
    peer: str, forwarded_for: str | None, forwarded_proto: str | None, trusted: Sequence[Network]
) -> ForwardedOrigin:
    """The client behind ``peer`` (the connection's address), from the two headers as they
    arrived. A peer that is not a trusted proxy is the client, whatever the headers say."""
    peer_address = ip_parse(peer)
    if not address_trusted(peer_address, trusted):
        return ForwardedOrigin(address=peer, scheme=None, hops=0)
    client, hops = str(peer_address), 1
    chain = [entry for entry in (forwarded_for or "").split(",") if entry.strip()]
    while chain:
        candidate = ip_parse(chain.pop())
        if candidate is None:
            break  # not an address a proxy writes: stop at the last hop we trust
        client = str(candidate)
        if not address_trusted(candidate, trusted):
            break
        hops += 1
    schemes = [entry.strip().lower() for entry in (forwarded_proto or "").split(",")]
    schemes = [entry for entry in schemes if entry]
    scheme = schemes[max(len(schemes) - hops, 0)] if schemes else None
    return ForwardedOrigin(address=client, scheme=scheme if scheme in SCHEMES else None, hops=hops)


def _apply(request: HttpRequest) -> None:
    meta = request.META
    origin = forwarded_origin(
        meta.get("REMOTE_ADDR", ""),
        meta.get("HTTP_X_FORWARDED_FOR"),
        meta.get("HTTP_X_FORWARDED_PROTO"),
        settings.TRUSTED_PROXIES,
    )
    meta["REMOTE_ADDR"] = origin.address
    if origin.hops == 0:
        meta.pop("HTTP_X_FORWARDED_FOR", None)
    if origin.scheme is None:
        meta.pop("HTTP_X_FORWARDED_PROTO", None)
    else:
        meta["HTTP_X_FORWARDED_PROTO"] = origin.scheme


@sync_and_async_middleware
def trusted_proxy_middleware(get_response: Callable[[HttpRequest], Any]) -> Any:
    """``REMOTE_ADDR`` becomes the client's address and ``X-Forwarded-Proto`` the client's
    scheme (or is removed), as ``forwarded_origin`` decides; first in ``MIDDLEWARE``, so that
    SecurityMiddleware, django-axes and every view see only these."""
    if iscoroutinefunction(get_response):
        async_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = get_response

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            _apply(request)
            return await async_response(request)

        return middleware

    sync_response: Callable[[HttpRequest], HttpResponseBase] = get_response

    def sync_middleware(request: HttpRequest) -> HttpResponseBase:
        _apply(request)
        return sync_response(request)

    return sync_middleware
