"""One HTTP/1.1 connection of the fake: routing, auth, validation, JSON replies and SSE streams.

Each connection runs in its own thread (ThreadingHTTPServer), so a slow stream only delays its
own client. Every wait goes through ``FakeClaude.wait`` so that stop() cuts it short.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from pipeline.fakeclaude.protocol import (
    InvalidRequestError,
    Reply,
    count_input_tokens,
    error_body,
    json_bytes,
    message_json,
    new_id,
    parse_request,
    plan_reply,
    stream_error_event,
    stream_events,
)
from pipeline.fakeclaude.records import RecordedRequest, redact
from pipeline.fakeclaude.scenarios import Failure, Scenario, UnknownScenarioError

if TYPE_CHECKING:
    from pipeline.fakeclaude.server import FakeClaude, _Server

logger = logging.getLogger("pipeline.fakeclaude")

SCENARIO_HEADER = "x-fake-scenario"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"

# status, error type, message of the failures that replace the whole response
_STATUS_FAILURES: dict[Failure, tuple[int, str, str]] = {
    Failure.UNAUTHORIZED: (401, "authentication_error", "invalid x-api-key"),
    Failure.RATE_LIMITED: (429, "rate_limit_error", "This request would exceed the rate limit."),
    Failure.SERVER_ERROR: (500, "api_error", "Internal server error"),
    Failure.OVERLOADED: (529, "overloaded_error", "Overloaded"),
}
_CUT_FAILURES = (Failure.STREAM_ERROR, Failure.DROP_CONNECTION, Failure.TRUNCATED_STREAM)


@dataclass
class _Exchange:
    """What is known about the request being answered; frozen into a RecordedRequest."""

    request_id: str
    method: str
    path: str
    headers: dict[str, str]
    api_key: str | None = None
    auth_scheme: str | None = None
    body: dict[str, Any] | None = None
    scenario: str | None = None

    def recorded(self, status: int) -> RecordedRequest:
        return RecordedRequest(
            request_id=self.request_id,
            method=self.method,
            path=self.path,
            headers=self.headers,
            api_key=self.api_key,
            auth_scheme=self.auth_scheme,
            body=self.body,
            scenario=self.scenario,
            status=status,
        )


class MessagesHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each SSE frame is its own small write; with Nagle on, every one waits for the
    # client's delayed ACK (~40 ms per streamed call on Linux). The real API does not.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return "fakeclaude"

    @property
    def fake(self) -> FakeClaude:
        return self.server.fake

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        exchange = _Exchange(
            request_id=new_id("req"),
            method="POST",
            path=self.path.split("?", 1)[0],
            headers=redact(self.headers.items()),
        )
        try:
            self._answer(exchange)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; nothing left to tell it

    def _unsupported(self) -> None:
        self.close_connection = True  # any body is left unread, so the connection is done
        exchange = _Exchange(new_id("req"), self.command, self.path, redact(self.headers.items()))
        self._send_error(exchange, 404, "not_found_error", "Not found")

    do_GET = do_PUT = do_PATCH = do_DELETE = _unsupported

    # -- request --------------------------------------------------------------------------------

    def _answer(self, exchange: _Exchange) -> None:
        raw = self._read_body()
        exchange.api_key, exchange.auth_scheme = self._credentials()
        if exchange.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
            return self._send_error(exchange, 404, "not_found_error", "Not found")
        if not exchange.api_key:
            message = "x-api-key header is required"
            return self._send_error(exchange, 401, "authentication_error", message)
        if not self.fake.accepts(exchange.api_key):
            return self._send_error(exchange, 401, "authentication_error", "invalid x-api-key")
        if not self.headers.get("anthropic-version"):
            message = "anthropic-version: header is required"
            return self._send_error(exchange, 400, "invalid_request_error", message)
        counting = exchange.path == COUNT_TOKENS_PATH
        try:
            exchange.body = parse_request(raw, require_max_tokens=not counting)
        except InvalidRequestError as error:
            return self._send_error(exchange, 400, "invalid_request_error", str(error))
        if counting:
            return self._send_json(
                exchange, 200, {"input_tokens": count_input_tokens(exchange.body)}
            )
        try:
            scenario = self.fake.scenarios.resolve(
                api_key=exchange.api_key, header_name=self.headers.get(SCENARIO_HEADER)
            )
        except UnknownScenarioError as error:
            message = f"{SCENARIO_HEADER}: no fake scenario is called {error.args[0]!r}"
            return self._send_error(exchange, 400, "invalid_request_error", message)
        exchange.scenario = scenario.name
        return self._reply(exchange, scenario, exchange.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("content-length", "0"))
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _credentials(self) -> tuple[str | None, str | None]:
        key = self.headers.get("x-api-key")
        if key:
            return key.strip(), "x-api-key"
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip(), "bearer"
        return None, None

    # -- replies --------------------------------------------------------------------------------

    def _reply(self, exchange: _Exchange, scenario: Scenario, body: dict[str, Any]) -> None:
        if scenario.failure in _STATUS_FAILURES:
            status, error_type, message = _STATUS_FAILURES[scenario.failure]
            headers = []
            if scenario.failure is Failure.RATE_LIMITED:
                headers.append(("retry-after", str(scenario.retry_after_seconds)))
            message = scenario.error_message or message
            return self._send_error(exchange, status, error_type, message, headers)
        reply = plan_reply(body, scenario)
        if body.get("stream"):
            return self._stream(exchange, scenario, reply)
        return self._reply_whole(exchange, scenario, reply)

    def _reply_whole(self, exchange: _Exchange, scenario: Scenario, reply: Reply) -> None:
        pacing = (
            reply.output_tokens / scenario.tokens_per_second if scenario.tokens_per_second else 0
        )
        if self.fake.wait(scenario.time_to_first_token + pacing):
            return self._hang_up()
        if scenario.failure is Failure.DROP_CONNECTION:
            self.fake.record(exchange.recorded(0))
            return self._hang_up()
        if scenario.failure is Failure.STREAM_ERROR:
            # Without a stream there is nothing to interrupt: the error is the whole answer.
            message = scenario.error_message or "Overloaded"
            return self._send_error(exchange, 529, "overloaded_error", message)
        return self._send_json(exchange, 200, message_json(reply))

    def _stream(self, exchange: _Exchange, scenario: Scenario, reply: Reply) -> None:
        self._send_head(
            exchange,
            200,
            [
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
                ("transfer-encoding", "chunked"),
            ],
        )
        deltas_sent = 0
        for event in stream_events(reply):
            cut_now = deltas_sent >= scenario.fail_after_deltas or event.name == "message_delta"
            if scenario.failure in _CUT_FAILURES and cut_now:
                return self._cut_stream(scenario)
            if scenario.failure is Failure.NO_MESSAGE_STOP and event.name == "message_stop":
                break
            wait = 0.0
            if event.name == "content_block_start" and event.data["index"] == 0:
                wait = scenario.time_to_first_token
            elif event.tokens and scenario.tokens_per_second:
                wait = event.tokens / scenario.tokens_per_second
            if self.fake.wait(wait):
                return self._hang_up()
            self._write_chunk(event.encode())
            deltas_sent += event.name == "content_block_delta"
        self._write_chunk(b"")

    def _cut_stream(self, scenario: Scenario) -> None:
        if scenario.failure is Failure.DROP_CONNECTION:
            return self._hang_up()
        if scenario.failure is Failure.STREAM_ERROR:
            message = scenario.error_message or "Overloaded"
            self._write_chunk(stream_error_event("overloaded_error", message).encode())
        self._write_chunk(b"")  # a clean end of the body: the stream simply stops early

    # -- wire -----------------------------------------------------------------------------------

    def _send_error(
        self,
        exchange: _Exchange,
        status: int,
        error_type: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        body = error_body(error_type, message, exchange.request_id)
        self._send_json(exchange, status, body, headers or [])

    def _send_json(
        self,
        exchange: _Exchange,
        status: int,
        data: dict[str, Any],
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        payload = json_bytes(data)
        content = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        self._send_head(exchange, status, content + (headers or []))
        self.wfile.write(payload)

    def _send_head(self, exchange: _Exchange, status: int, headers: list[tuple[str, str]]) -> None:
        # Recorded before anything is sent, so a test that got its answer always sees the record.
        self.fake.record(exchange.recorded(status))
        self.send_response(status)
        self.send_header("request-id", exchange.request_id)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body; empty data writes the terminating chunk."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _hang_up(self) -> None:
        """Close the socket now, mid-response if need be (the client sees a dropped connection)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
