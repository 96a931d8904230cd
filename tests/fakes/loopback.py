"""The loopback server both provider fakes (``github/``, ``google/``) run their WSGI apps on."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are recorded by the fakes; the dev server's access log is noise."""


class LoopbackServer:
    """Serves a WSGI app on 127.0.0.1 from a daemon thread.

    ``start`` binds the port before the thread starts, so the URL answers as soon as it
    returns: connections made before the loop runs wait in the listen backlog.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._server.server_port}/"

    def start(self) -> None:
        server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler
        )
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None
