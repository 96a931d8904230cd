"""The webhooks' one way out to the network: a POST to an address that was just checked.

``http.client`` rather than ``requests``: the connection must go to the very address that
``safety.addresses_check`` approved, while TLS still verifies the certificate against the
URL's host name (SNI and hostname checking), and nothing may follow a redirect. A subclass of
``HTTPConnection`` that opens its socket to the pinned address does exactly that; with
``requests`` it would take a custom transport adapter to do the same.

Each socket operation (connect, TLS handshake, send, each read) has ``timeout`` seconds; the
answer's body is read only as far as the excerpt staff see (1 KiB), so a slow or endless body
cannot hold a worker.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aisystem.webhooks.safety import IPAddress, Target, UnsafeUrl, addresses_check, url_check

EXCERPT_BYTES = 1024
EXCERPT_CHARS = 200
USER_AGENT = "aisystem-webhooks/1"


@dataclass(frozen=True)
class HttpResult:
    """What one POST came to. ``status_code`` is None when no answer came (``error`` says why);
    a 3xx is an answer like any other non-2xx: a failure, not followed."""

    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to ``target.host`` whose socket goes to ``address``."""

    def __init__(
        self, target: Target, address: IPAddress, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address
        self._tls = tls
        if tls is not None:
            self.default_port = 443  # so that the Host header leaves out the default port

    def connect(self) -> None:
        sock = socket.create_connection((str(self._address), self.port), self.timeout)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def webhook_post(
    url: str, body: bytes, headers: Mapping[str, str], *, allow_private: bool, timeout: float
) -> HttpResult:
    """POST ``body`` to ``url`` after checking the addresses its host resolves to now. Never
    raises for what the network or the endpoint does: the result says it."""
    started = time.monotonic()
    try:
        target = url_check(url)
        addresses = addresses_check(target, allow_private=allow_private)
    except UnsafeUrl as exc:
        return HttpResult(None, _ms(started), error=f"refused: {exc}")
    tls = ssl.create_default_context() if target.scheme == "https" else None
    connection, error = _connect(target, addresses, timeout, tls)
    if connection is None:
        return HttpResult(None, _ms(started), error=error)
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        return HttpResult(None, _ms(started), error=_describe(exc))
    finally:
        connection.close()
    return HttpResult(response.status, _ms(started), excerpt=_excerpt(excerpt))


def _connect(
    target: Target, addresses: list[IPAddress], timeout: float, tls: ssl.SSLContext | None
) -> tuple[_PinnedConnection | None, str]:
    """The first address that accepts a connection; nothing is sent before that, so trying
    the next address cannot deliver twice."""
    error = "no address"
    for address in addresses:
        connection = _PinnedConnection(target, address, timeout, tls)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            error = _describe(exc)
            continue
        return connection, ""
    return None, error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:255]


def _excerpt(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
