"""What the fake answers: scenarios, the named presets, and the thread-safe book that picks one.

A request's scenario is chosen, most specific first:

1. the ``x-fake-scenario: NAME`` request header (a preset or a name given to
   ``ScenarioBook.define``); an unknown name is a 400 ``invalid_request_error``; it uses up
   none of the counted rules below;
2. a rule set for the request's API key (``set(..., api_key=KEY)``);
3. a rule set for every key (``set(...)`` without ``api_key``);
4. the book's default (an echo).

Within 2 and 3 the newest rule that still has uses left wins, so ``set(RATE_LIMITED, times=1)``
on top of an older rule means "the next request gets a 429, the ones after it the older rule".
A header rather than a ``metadata`` field selects per request because the real API rejects
any ``metadata`` key other than ``user_id``, and the SDK sends extra headers untouched.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any


class Failure(enum.Enum):
    """How a request goes wrong, if it does."""

    NONE = "none"
    UNAUTHORIZED = "unauthorized"  # 401 authentication_error
    RATE_LIMITED = "rate_limited"  # 429 rate_limit_error with retry-after
    SERVER_ERROR = "server_error"  # 500 api_error
    OVERLOADED = "overloaded"  # 529 overloaded_error
    STREAM_ERROR = "stream_error"  # HTTP 200, then an `error` event after some deltas
    DROP_CONNECTION = "drop_connection"  # socket closed mid-body after some deltas
    NO_MESSAGE_STOP = "no_message_stop"  # complete stream up to message_delta, no message_stop
    TRUNCATED_STREAM = "truncated_stream"  # body ends cleanly after some deltas, no stop events


@dataclass(frozen=True)
class ToolUseReply:
    """A ``tool_use`` content block; the reply then stops with ``stop_reason="tool_use"``."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    text_before: str = ""  # an optional text block ahead of the tool call, as Claude often sends


@dataclass(frozen=True)
class Scenario:
    """One way of answering.

    ``reply_text`` None means an echo of the last user message. ``time_to_first_token`` is the
    wait (seconds) before the first content block (a stream sends its headers and
    ``message_start`` at once, as the real API does); ``tokens_per_second`` paces each delta
    (None: no pacing). A non-streaming reply waits for both before it is sent.
    ``fail_after_deltas`` is how many content deltas go out before a mid-stream failure.
    A non-streaming request with a mid-stream failure gets the matching whole-request outcome
    (STREAM_ERROR: a 529-style error body with status 529; DROP_CONNECTION: no response at all).
    """

    name: str = "echo"
    reply_text: str | None = None
    tool_use: ToolUseReply | None = None
    time_to_first_token: float = 0.0
    tokens_per_second: float | None = None
    failure: Failure = Failure.NONE
    retry_after_seconds: int = 1
    fail_after_deltas: int = 2
    error_message: str | None = None


ECHO = Scenario()
TOOL_USE = Scenario(
    name="tool_use",
    tool_use=ToolUseReply(
        name="get_weather", input={"city": "Paris", "unit": "celsius"}, text_before="Checking."
    ),
)
SLOW = Scenario(name="slow", time_to_first_token=1.0, tokens_per_second=20.0)
# A stream that never stalls long enough for a read timeout yet takes long to finish: a word
# every 2.5 s (" drip" is two tokens), 30 s in all, so only a deadline on the whole call cuts
# it short.
SLOW_DRIP = Scenario(
    name="slow_drip",
    reply_text=" ".join(["drip"] * 12),
    tokens_per_second=0.8,
)
UNAUTHORIZED = Scenario(name="unauthorized", failure=Failure.UNAUTHORIZED)
RATE_LIMITED = Scenario(name="rate_limited", failure=Failure.RATE_LIMITED)
SERVER_ERROR = Scenario(name="server_error", failure=Failure.SERVER_ERROR)
OVERLOADED = Scenario(name="overloaded", failure=Failure.OVERLOADED)
STREAM_ERROR = Scenario(name="stream_error", failure=Failure.STREAM_ERROR)
DROP_CONNECTION = Scenario(name="drop_connection", failure=Failure.DROP_CONNECTION)
NO_MESSAGE_STOP = Scenario(name="no_message_stop", failure=Failure.NO_MESSAGE_STOP)
TRUNCATED_STREAM = Scenario(name="truncated_stream", failure=Failure.TRUNCATED_STREAM)

PRESETS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        ECHO,
        TOOL_USE,
        SLOW,
        SLOW_DRIP,
        UNAUTHORIZED,
        RATE_LIMITED,
        SERVER_ERROR,
        OVERLOADED,
        STREAM_ERROR,
        DROP_CONNECTION,
        NO_MESSAGE_STOP,
        TRUNCATED_STREAM,
    )
}


class UnknownScenarioError(LookupError):
    """The ``x-fake-scenario`` header named no preset and no defined scenario."""


@dataclass
class _Rule:
    scenario: Scenario
    remaining: int | None  # None: forever


class ScenarioBook:
    """Thread-safe scenario rules; ``resolve`` consumes one use of the rule it picks."""

    def __init__(self, default: Scenario = ECHO) -> None:
        self._lock = threading.Lock()
        self._default = default
        self._named: dict[str, Scenario] = dict(PRESETS)
        self._by_key: dict[str | None, list[_Rule]] = {}

    def define(self, name: str, scenario: Scenario) -> None:
        """Make ``scenario`` selectable with the header ``x-fake-scenario: name``."""
        with self._lock:
            self._named[name] = scenario

    def set(
        self, scenario: Scenario, *, api_key: str | None = None, times: int | None = None
    ) -> None:
        """Answer the next ``times`` requests (all, if None) with ``scenario``.

        With ``api_key`` only requests made with that key (x-api-key or bearer) are affected.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            self._by_key.setdefault(api_key, []).append(_Rule(scenario, times))

    def set_default(self, scenario: Scenario) -> None:
        with self._lock:
            self._default = scenario

    def clear(self) -> None:
        """Drop every rule (named scenarios stay)."""
        with self._lock:
            self._by_key.clear()

    def resolve(self, *, api_key: str | None, header_name: str | None) -> Scenario:
        """Pick the scenario for one request; raises UnknownScenarioError for a bad header."""
        with self._lock:
            if header_name:
                try:
                    return self._named[header_name]
                except KeyError:
                    raise UnknownScenarioError(header_name) from None
            picked = self._take(api_key) if api_key is not None else None
            if picked is None:
                picked = self._take(None)  # rules for every key
            return picked if picked is not None else self._default

    def _take(self, target: str | None) -> Scenario | None:
        rules = self._by_key.get(target)
        if not rules:
            return None
        rule = rules[-1]  # exhausted rules are removed, so the newest one is live
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining == 0:
                rules.pop()
        return rule.scenario

    def named(self, name: str) -> Scenario:
        with self._lock:
            return self._named[name]
