"""A fake Anthropic Messages API on loopback, for tests, demos and benchmarks.

It speaks the real wire protocol so the real ``anthropic`` SDK can be pointed at it with
``base_url``: ``POST /v1/messages`` (JSON, or SSE with ``"stream": true``) and
``POST /v1/messages/count_tokens``. It is built on the standard library alone
(``http.server.ThreadingHTTPServer``) so that shipping it in ``pipeline/`` adds no runtime
dependency, and it never imports ``anthropic``: only ``pipeline/claude/client.py`` may (ruff
TID251), and a fake built from the SDK's own types could not catch the SDK disagreeing with
the wire.

Protocol, as the real API does it:

* auth by ``x-api-key`` or ``Authorization: Bearer``; a missing or unknown key is a 401
  ``authentication_error``; every response has a ``request-id`` header (``req_01…``) and every
  error body is ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``;
* a missing ``anthropic-version`` header, bad JSON, or a missing/invalid ``model``,
  ``max_tokens`` or ``messages`` is a 400 ``invalid_request_error``;
* the reply is an echo of the last user message ("You said: …") unless the scenario says
  otherwise; it is cut at ``stop_sequences`` and at ``max_tokens`` with the matching
  ``stop_reason``; tokens are estimated (~4 characters each, see ``protocol``);
* a stream goes ``message_start``, then per block ``content_block_start``, (``ping`` after the
  first), ``content_block_delta``…, ``content_block_stop``, then ``message_delta`` (stop reason
  and cumulative ``output_tokens``) and ``message_stop``, chunked, one SSE frame per chunk.

Scenarios (``Scenario``, ``Failure``; see ``scenarios`` for how one is picked) are set from code
(``FakeClaude.set_scenario(scenario, api_key=..., times=N)``) or per request with the header
``x-fake-scenario: NAME`` (a name from ``PRESETS`` or one given to ``define_scenario``). Received
requests are kept as ``RecordedRequest`` (credential headers redacted) in ``FakeClaude.requests``.

The dev command: ``python manage.py fakeclaude --port 8765``.
"""

from __future__ import annotations

from pipeline.fakeclaude.handler import SCENARIO_HEADER
from pipeline.fakeclaude.records import RecordedRequest
from pipeline.fakeclaude.scenarios import (
    DROP_CONNECTION,
    ECHO,
    NO_MESSAGE_STOP,
    OVERLOADED,
    PRESETS,
    RATE_LIMITED,
    SERVER_ERROR,
    SLOW,
    SLOW_DRIP,
    STREAM_ERROR,
    TOOL_USE,
    TRUNCATED_STREAM,
    UNAUTHORIZED,
    Failure,
    Scenario,
    ScenarioBook,
    ToolUseReply,
)
from pipeline.fakeclaude.server import FakeClaude

__all__ = [
    "DROP_CONNECTION",
    "ECHO",
    "NO_MESSAGE_STOP",
    "OVERLOADED",
    "PRESETS",
    "RATE_LIMITED",
    "SCENARIO_HEADER",
    "SERVER_ERROR",
    "SLOW",
    "SLOW_DRIP",
    "STREAM_ERROR",
    "TOOL_USE",
    "TRUNCATED_STREAM",
    "UNAUTHORIZED",
    "Failure",
    "FakeClaude",
    "RecordedRequest",
    "Scenario",
    "ScenarioBook",
    "ToolUseReply",
]
