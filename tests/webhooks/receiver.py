"""A webhook receiver on loopback that checks each delivery as a real integrator would: with
the ``standardwebhooks`` library and the secrets it was given.

``respond_with`` queues the status codes of the next answers (then 200s); ``hold()`` makes
the next requests wait, unanswered, until ``release()``: a delivery caught mid-flight.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

WAIT_SECONDS = 30


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: tuple[str, ...]  # the secrets whose signature verified

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    location: str = ""
    holding: bool = False
    _released: threading.Event = field(default_factory=threading.Event)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def respond_with(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    def hold(self) -> None:
        self.holding = True
        self._released.clear()

    def release(self) -> None:
        self.holding = False
        self._released.set()

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        """Block until ``count`` requests have arrived (a hang guard, not a timing check)."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
        assert arrived, f"{len(self.received)} of {count} webhook requests arrived"
        return list(self.received)

    def _take(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bool]:
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        with self._arrived:
            self.received.append(Received(path, headers, body, tuple(verified)))
            self._arrived.notify_all()
        status = self.statuses.pop(0) if self.statuses else 200
        return status, self.holding


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, hold = receiver._take(self.path, headers, body)
            if hold:
                receiver._released.wait(WAIT_SECONDS)
            answer = b'{"ok": true}' if status < 300 else b"service unavailable, try later"
            try:
                self.send_response(status)
                if receiver.location and 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the sender gave up (timed out, or was killed) while we held it

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running_receiver(
    host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    """A receiver on ``host``; with ``tls`` (a server context) it speaks HTTPS."""
    receiver = Receiver()
    server = ThreadingHTTPServer((host, 0), _handler(receiver))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    receiver.url = f"{scheme}://{host}:{server.server_address[1]}/hooks/in?source=aisystem"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
