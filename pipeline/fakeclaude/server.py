"""The HTTP side of the fake: a threading server, its request handler, and ``FakeClaude``."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from pipeline.fakeclaude.handler import MessagesHandler
from pipeline.fakeclaude.records import RecordedRequest
from pipeline.fakeclaude.scenarios import ECHO, Scenario, ScenarioBook


class _Server(ThreadingHTTPServer):
    # Non-daemon threads, joined on close: stop() first wakes every one of them (stop flag for
    # waits, socket shutdown for blocked reads), so the join is quick and nothing outlives stop().
    daemon_threads = False
    # The default backlog (5) refuses a burst of new connections, as 50 concurrent clients make.
    request_queue_size = 256
    block_on_close = True

    def __init__(self, address: tuple[str, int], fake: FakeClaude) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, MessagesHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class FakeClaude:
    """A fake Anthropic Messages API on loopback; see the package docstring for the protocol.

    ``api_keys`` None accepts any non-empty key; otherwise only those keys (x-api-key header or
    ``Authorization: Bearer``) get past the 401. Use as a context manager or start()/stop().
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] | None = None,
        default: Scenario = ECHO,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.scenarios = ScenarioBook(default)
        self._api_keys = None if api_keys is None else set(api_keys)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeClaude:
        """Bind and serve in a background thread; returns self once the port is open."""
        if self._server is not None:
            raise RuntimeError("FakeClaude is already running")
        self.stopping.clear()
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeclaude:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every open connection and in-flight reply, join the threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.drop_all_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server, self._thread = None, None

    def __enter__(self) -> FakeClaude:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeClaude is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url`` (no trailing ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    # -- credentials ----------------------------------------------------------------------------

    def add_api_key(self, key: str) -> None:
        with self._lock:
            if self._api_keys is None:
                self._api_keys = set()
            self._api_keys.add(key)

    def accepts(self, key: str | None) -> bool:
        if not key:
            return False
        with self._lock:
            return self._api_keys is None or key in self._api_keys

    # -- scenarios --------------------------------------------------------------------------------

    def set_scenario(
        self, scenario: Scenario, *, api_key: str | None = None, times: int | None = None
    ) -> None:
        """Answer the next ``times`` requests (every one if None), optionally for one key only."""
        self.scenarios.set(scenario, api_key=api_key, times=times)

    def define_scenario(self, name: str, scenario: Scenario) -> None:
        """Make ``scenario`` selectable per request with the header ``x-fake-scenario: name``."""
        self.scenarios.define(name, scenario)

    def reset(self) -> None:
        """Forget scenario rules and recorded requests."""
        self.scenarios.clear()
        with self._lock:
            self._requests.clear()

    # -- recorded requests ----------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeClaude has received no request yet")
            return self._requests[-1]

    def wait(self, seconds: float) -> bool:
        """Sleep without holding up shutdown; True means the fake is stopping."""
        return self.stopping.wait(seconds) if seconds > 0 else self.stopping.is_set()
