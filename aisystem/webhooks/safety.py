"""Which webhook URLs the system may call: the one place that decides (SSRF protection).

A webhook URL is typed by staff, but it is still an instruction to make this server send a
request: without limits it reaches the database port, the cloud metadata address or an admin
page on the internal network. So:

* only ``http`` and ``https``, with a host and no user-info;
* every address the host resolves to must be public: private, loopback, link-local, multicast,
  reserved and unspecified ones are refused, unless ``AISYSTEM_WEBHOOK_ALLOW_PRIVATE=true``
  (development, and the tests' receiver on loopback);
* the check runs when a subscription is saved *and* again before every connection, on the
  addresses then resolved, and the connection goes to exactly the address that was checked
  (``aisystem.webhooks.http``): a name that resolved to a public address yesterday and to
  127.0.0.1 now (DNS rebinding) is refused at connect time.

A name that does not resolve when the subscription is saved is accepted (DNS may be down, or
the endpoint not deployed yet); the connect-time check is the one that guards.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, in words staff can act on."""


@dataclass(frozen=True)
class Target:
    """A checked URL, split for the connection."""

    scheme: str
    host: str
    port: int
    path: str  # with the query string


def url_check(url: str) -> Target:
    """The URL's parts if its form is acceptable (scheme, host, port); raises ``UnsafeUrl``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(f"{url!r}: only http:// and https:// URLs can receive webhooks")
    if not parts.hostname:
        raise UnsafeUrl(f"{url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(f"{url!r}: credentials in the URL are not supported")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default_port, path)


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """True if a webhook may connect to ``address``."""
    if allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def addresses_resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order; raises ``OSError``."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def addresses_check(target: Target, *, allow_private: bool) -> list[IPAddress]:
    """The addresses to connect to, all allowed; raises ``UnsafeUrl`` if the host does not
    resolve or any of its addresses is refused (one refused address refuses the name: the
    resolver's order is not ours to trust)."""
    try:
        addresses = addresses_resolve(target.host, target.port)
    except OSError as exc:
        raise UnsafeUrl(f"{target.host} does not resolve: {exc}") from None
    if not addresses:
        raise UnsafeUrl(f"{target.host} does not resolve")
    _refuse_private(target, addresses, allow_private=allow_private)
    return addresses


def url_validate(url: str, *, allow_private: bool) -> str:
    """The URL, stripped, if a subscription may be saved with it; raises ``UnsafeUrl``.

    A host that does not resolve now is accepted (see the module's docstring)."""
    target = url_check(url)
    try:
        addresses = addresses_resolve(target.host, target.port)
    except OSError:
        return url.strip()
    _refuse_private(target, addresses, allow_private=allow_private)
    return url.strip()


def _refuse_private(target: Target, addresses: list[IPAddress], *, allow_private: bool) -> None:
    refused = [a for a in addresses if not address_allowed(a, allow_private=allow_private)]
    if refused:
        raise UnsafeUrl(
            f"{target.host} resolves to {refused[0]}, a private, loopback or link-local address; "
            "webhooks only reach public addresses (AISYSTEM_WEBHOOK_ALLOW_PRIVATE=true allows "
            "others, for development)"
        )
