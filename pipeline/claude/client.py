"""The Claude client: the only module that imports ``anthropic`` (ruff TID251 bans it elsewhere).

``ClaudeClient.create()`` streams one Messages call and returns a ``ClaudeReply``. Around the
SDK, whose own retries are off, it rotates keys, retries, logs and obeys the breaker:

* keys (picked in ``pipeline.claude.store``): a 429 cools the key down for its ``retry-after``
  (30 s if missing) and the next key is tried at once; when every key is cooling, the call waits
  in-line for the soonest one if that is within ``MAX_INLINE_WAIT_SECONDS``, else it is
  ClaudeUnavailable. A 401/403 marks the key invalid and the next key is tried.
* retries: 5xx, 529, connection failures, timeouts and broken streams (an ``error`` event, a
  dropped connection, no ``message_stop``) are retried on the same key after exponential
  backoff with full jitter (or the response's ``retry-after``), up to ``MAX_ATTEMPTS`` attempts
  in all; an in-line wait for a cooling key counts as one. Any other 4xx (400 invalid request,
  404 model, 413 too large) is permanent and never retried.
* deadlines: the SDK's ``timeout`` (``TIMEOUT_SECONDS``) bounds each read, so a stream that
  keeps trickling could run for ever. Two deadlines bound the time itself: one attempt, from
  connecting to ``message_stop``, gets at most ``TIMEOUT_SECONDS``; one answer (``create()``:
  every attempt, backoff and in-line wait) at most ``ANSWER_TIMEOUT_SECONDS``. An attempt cut
  short is a timeout, retried like any other; a backoff or wait that would end past the
  answer's deadline is not started. An answer out of time raises the non-permanent
  ``IntegrationError`` of a call that gave up after its retries: the message is deferred, and
  the breaker counts one failure.
* what the caller does (``pipeline.agent``): ``ClaudeUnavailable``, or a non-permanent
  ``IntegrationError`` after the last retry, is the service's trouble: the message is deferred
  and answered on recovery. Only a ``permanent`` error fails it, as it would fail again.
* breaker (``pipeline.claude.breaker``): one failure per ``create()`` that gave up after its
  retries.
  Rate limits, bad keys, bad requests and cancellations are the key's or the caller's trouble,
  not the service's: they do not count (a half-open probe ending so is released). A call that
  holds the half-open probe renews the probe's lease while it runs, so that if its process
  dies another process probes within ``BREAKER_PROBE_LEASE_SECONDS``.
* log: one ``ExternalCall`` per HTTP attempt and a warning line per failed one; error texts are
  scrubbed of the key in use and of anything key-shaped before they are stored, logged or raised.

A successful call takes two database hops: breaker check + key pick, then log + breaker; or
one, when the caller collects the log rows to write them with its own (``calls_collect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anthropic
import httpx2
from anthropic.types import Message
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from aisystem.errors import IntegrationError
from pipeline.claude import breaker
from pipeline.claude import store as claude_store
from pipeline.claude.params import request_params
from pipeline.claude.store import (
    DEFAULT_RETRY_AFTER_SECONDS,
    OPERATION,
    SERVICE,
    ApiKey,
    Attempt,
    ClaudeStatus,
    Fault,
    KeyPick,
    Settlement,
    claude_status,
)
from pipeline.types import (
    ClaudeReply,
    ClaudeRequest,
    TextBlock,
    ToolUseBlock,
)

__all__ = ["ClaudeClient", "ClaudeStatus", "ClaudeUnavailable", "claude_status", "retry_delay"]

_KEY_LIKE = re.compile(r"sk-ant-[A-Za-z0-9_\-]+")
_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "timeout_error"})
_call_open = sync_to_async(claude_store.call_open)
_call_settle = sync_to_async(claude_store.call_settle)
_probe_renew = sync_to_async(breaker.breaker_renew_probe)

logger = logging.getLogger(__name__)

TextCallback = Callable[[str], Awaitable[None]]


class ClaudeUnavailable(IntegrationError):
    """Claude cannot be asked now (breaker open or probing, or no usable key): defer the message.

    Raised before any request is sent. A call that was sent and failed on the service's side
    after every retry raises a plain, non-permanent ``IntegrationError`` instead (its details
    name the last failure); callers defer on that too."""


@dataclass(frozen=True)
class _Call:
    params: dict[str, Any]
    on_text: TextCallback | None
    fallback_secret: str
    probe_claimed_at: datetime | None
    breaker_clean: bool
    max_attempts: int
    backoff_base: float
    backoff_max: float
    max_inline_wait: float
    attempt_seconds: float  # the most one attempt may take, start to finish
    answer_seconds: float  # the most the whole call may take
    deadline: float  # ``time.monotonic()`` by which the whole call ends

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class _Progress:
    """What an attempt had received when it was cut short (for its log row)."""

    request_id: str = ""
    status_code: int | None = None


async def _probe_lease_keep(claimed_at: datetime) -> None:
    """Renew the half-open probe's lease every third of it until cancelled (the call ended)
    or the probe is no longer ours. Real sleeps, not the client's injected ``sleep``: the lease
    runs on the database's clock, whatever a test does with the call's waits."""
    policy = breaker.breaker_policy()
    while True:
        await asyncio.sleep(policy.probe_lease_seconds / 3)
        try:
            if not await _probe_renew(SERVICE, claimed_at, policy=policy):
                return
        except Exception:  # the database is busy: the lease has two more chances
            logger.warning("could not renew the breaker probe's lease", exc_info=True)


def retry_delay(
    failures: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    jitter: Callable[[float, float], float] | None = None,
) -> float:
    """Seconds to wait after ``failures`` failed attempts (1 = the first).

    Full jitter: uniform in [0, min(cap, base * 2**(failures - 1))], so processes that failed
    together do not retry together. Written by hand: it is one line, and tenacity is not a
    dependency of this project. A server's ``retry-after`` wins, capped at ``cap``. ``jitter``
    defaults to ``random.uniform``, looked up per call.
    """
    if retry_after is not None:
        return min(retry_after, cap)
    return (jitter or random.uniform)(0.0, min(cap, base * 2 ** (failures - 1)))


class ClaudeClient:
    """Streams Messages calls; see the module docstring. One SDK client per key, kept open
    until ``aclose()``. ``base_url`` and ``fallback_api_key`` default to the settings."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        fallback_api_key: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._base_url = base_url
        self._fallback_api_key = fallback_api_key
        self._sleep = sleep
        self._sdk_clients: dict[tuple[str, str], anthropic.AsyncAnthropic] = {}

    async def create(
        self, request: ClaudeRequest, *, on_text: TextCallback | None = None
    ) -> ClaudeReply:
        """Stream one reply. ``on_text`` is awaited with the attempt's accumulated text after
        each text delta; a retried attempt starts again from "".

        Raises ClaudeUnavailable (breaker open or probing, or no usable key) before any request
        is sent where it can; IntegrationError after the last retry of a 529, 5xx, timeout,
        connection error or broken stream (not ``permanent``: try later), or at once for a
        request the API refused as invalid (``permanent``: 400, 404, 413, …; never retried).
        CancelledError propagates once the attempt is logged.
        """
        fallback = self._fallback_api_key
        if fallback is None:
            fallback = str(settings.ANTHROPIC_API_KEY or "")
        figures = settings.CLAUDE
        answer_seconds = float(figures["ANSWER_TIMEOUT_SECONDS"])
        deadline = time.monotonic() + answer_seconds
        ticket, pick = await _call_open(timezone.now(), fallback)
        if not ticket.allowed:
            raise ClaudeUnavailable(SERVICE, OPERATION, "the circuit breaker is open")
        call = _Call(
            params=request_params(request),
            on_text=on_text,
            fallback_secret=fallback,
            probe_claimed_at=ticket.probe_claimed_at,
            breaker_clean=ticket.clean,
            max_attempts=int(figures["MAX_ATTEMPTS"]),
            backoff_base=float(figures["BACKOFF_BASE_SECONDS"]),
            backoff_max=float(figures["BACKOFF_MAX_SECONDS"]),
            max_inline_wait=float(figures["MAX_INLINE_WAIT_SECONDS"]),
            attempt_seconds=float(figures["TIMEOUT_SECONDS"]),
            answer_seconds=answer_seconds,
            deadline=deadline,
        )
        if ticket.probe_claimed_at is None:
            return await self._run(call, pick)
        lease = asyncio.create_task(_probe_lease_keep(ticket.probe_claimed_at))
        try:
            return await self._run(call, pick)
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease

    async def aclose(self) -> None:
        clients, self._sdk_clients = list(self._sdk_clients.values()), {}
        for client in clients:
            await client.close()

    async def _run(self, call: _Call, pick: KeyPick) -> ClaudeReply:
        excluded: set[int | None] = set()  # keys refused during this call
        failures = 0  # counted against MAX_ATTEMPTS: retryable failures and in-line waits
        while True:
            await _time_left_or_give_up(call)
            key = pick.key
            if key is None:
                key = await self._wait_for_key(call, pick, failures)
                failures += 1
            attempt = await self._attempt(call, key)
            if attempt.reply is not None:
                done = Settlement(attempt, "success", call.probe_claimed_at, call.breaker_clean)
                if not claude_store.call_collect(done):
                    await _call_settle(done)
                return attempt.reply
            _log_failure(attempt)
            if attempt.fault is Fault.PERMANENT:
                await _call_settle(Settlement(attempt, "neutral", call.probe_claimed_at))
                raise IntegrationError(SERVICE, OPERATION, attempt.error, permanent=True)
            if attempt.fault is Fault.RETRYABLE:
                failures += 1
                delay = self._backoff(call, failures, attempt.retry_after)
                gave_up = _giving_up(call, failures, delay, attempt.error)
                if gave_up is not None:
                    await _call_settle(Settlement(attempt, "failure", call.probe_claimed_at))
                    raise IntegrationError(SERVICE, OPERATION, gave_up)
                await _call_settle(Settlement(attempt, None, call.probe_claimed_at))
                await self._sleep(delay)
                pick = KeyPick(key)
                continue
            excluded.add(key.credential_id)  # rate limited or invalid: the next key, at once
            next_key = Settlement(
                attempt,
                None,
                call.probe_claimed_at,
                pick_next=True,
                excluded=frozenset(excluded),
                fallback_secret=call.fallback_secret,
            )
            pick = await _call_settle(next_key)

    @staticmethod
    def _backoff(call: _Call, failures: int, retry_after: float | None) -> float:
        return retry_delay(
            failures, base=call.backoff_base, cap=call.backoff_max, retry_after=retry_after
        )

    async def _wait_for_key(self, call: _Call, pick: KeyPick, failures: int) -> ApiKey:
        """Sleep until the soonest cooling key is back, if that is soon; else ClaudeUnavailable."""
        wait_key = pick.wait_key
        if (
            wait_key is None
            or pick.wait_seconds > call.max_inline_wait
            or failures + 1 >= call.max_attempts
            or pick.wait_seconds >= call.remaining()  # the key would be back too late
        ):
            if call.probe_claimed_at is not None:
                await _call_settle(Settlement(None, "neutral", call.probe_claimed_at))
            raise ClaudeUnavailable(SERVICE, OPERATION, "no usable API key")
        logger.info("all Anthropic keys are cooling down; waiting %.1f s", pick.wait_seconds)
        await self._sleep(pick.wait_seconds)
        return wait_key

    async def _attempt(self, call: _Call, key: ApiKey) -> Attempt:
        started = time.monotonic()
        progress = _Progress()
        budget = min(call.attempt_seconds, call.remaining())
        scope = asyncio.timeout(budget)
        try:
            try:
                async with scope:
                    return await self._stream(call, key, started, progress)
            except TimeoutError:
                if not scope.expired():  # not our deadline (on_text raised it): not a timeout
                    raise
                detail = f"timeout_error: no complete reply within {budget:.3g} s"
                return Attempt(
                    key,
                    Fault.RETRYABLE,
                    _elapsed_ms(started),
                    progress.status_code,
                    progress.request_id,
                    detail,
                )
        except BaseException as error:  # cancelled, or on_text failed: log it, then re-raise
            cancelled = isinstance(error, asyncio.CancelledError)
            reason = "cancelled" if cancelled else f"aborted by {type(error).__name__}"
            attempt = Attempt(key, Fault.ABORTED, _elapsed_ms(started), error=reason)
            await asyncio.shield(
                _call_settle(Settlement(attempt, "neutral", call.probe_claimed_at))
            )
            raise

    async def _stream(
        self, call: _Call, key: ApiKey, started: float, progress: _Progress
    ) -> Attempt:
        text, request_id = "", ""
        final: Message | None = None
        try:
            async with self._sdk_client(key.secret).messages.stream(**call.params) as stream:
                request_id = progress.request_id = stream.request_id or ""
                progress.status_code = 200
                async for event in stream:
                    if event.type == "text":
                        text += event.text
                        if call.on_text is not None:
                            await call.on_text(text)
                    elif event.type == "message_stop":
                        final = event.message
        except anthropic.APIStatusError as error:
            return _status_failure(key, error, _elapsed_ms(started))
        except (anthropic.APIError, httpx2.TransportError) as error:
            detail = _scrub(f"{type(error).__name__}: {error}", key.secret)
            return Attempt(key, Fault.RETRYABLE, _elapsed_ms(started), None, request_id, detail)
        latency = _elapsed_ms(started)
        if final is None or final.stop_reason is None:
            detail = "the stream ended without message_stop"
            return Attempt(key, Fault.RETRYABLE, latency, 200, request_id, detail)
        reply = _reply(final, key, request_id)
        return Attempt(key, Fault.NONE, latency, 200, request_id, reply=reply)

    def _sdk_client(self, secret: str) -> anthropic.AsyncAnthropic:
        base_url = self._base_url
        if base_url is None:
            base_url = str(settings.ANTHROPIC_BASE_URL or "")
        client = self._sdk_clients.get((base_url, secret))
        if client is None:
            client = anthropic.AsyncAnthropic(
                api_key=secret,
                base_url=base_url or None,
                max_retries=0,  # one layer of retries: ours
                timeout=float(settings.CLAUDE["TIMEOUT_SECONDS"]),
            )
            self._sdk_clients[(base_url, secret)] = client
        return client


# --- between our types and the SDK's ------------------------------------------------------


def _reply(message: Message, key: ApiKey, request_id: str) -> ClaudeReply:
    content: list[TextBlock | ToolUseBlock] = []
    for block in message.content:
        if block.type == "text":
            content.append(TextBlock(block.text))
        elif block.type == "tool_use":
            arguments = block.input if isinstance(block.input, dict) else {}
            content.append(ToolUseBlock(id=block.id, name=block.name, input=dict(arguments)))
    return ClaudeReply(
        content=tuple(content),
        stop_reason=str(message.stop_reason),
        model=message.model,
        input_tokens=message.usage.input_tokens,
        output_tokens=message.usage.output_tokens,
        request_id=request_id,
        credential_label=key.label,
    )


async def _time_left_or_give_up(call: _Call) -> None:
    """Before an attempt: the answer's deadline has passed (keys refused one after another
    until time ran out) → one failure for the breaker and the non-permanent IntegrationError
    of a call that gave up."""
    if call.remaining() > 0:
        return
    await _call_settle(Settlement(None, "failure", call.probe_claimed_at))
    raise IntegrationError(SERVICE, OPERATION, f"no answer within {call.answer_seconds:g} s")


def _giving_up(call: _Call, failures: int, delay: float, error: str) -> str | None:
    """Why the call stops after a retryable failure (the error to raise), or None to retry:
    out of attempts, or out of time (the answer's deadline passes before the next attempt
    could start)."""
    if failures >= call.max_attempts:
        return error
    if delay >= call.remaining():
        return f"no answer within {call.answer_seconds:g} s; last attempt: {error}"
    return None


def _status_failure(key: ApiKey, error: anthropic.APIStatusError, latency_ms: int) -> Attempt:
    """An HTTP error, or an ``error`` event mid-stream (status 200: the body's type decides)."""
    kind, status = error.type or "", error.status_code
    if kind in ("authentication_error", "permission_error") or status in (401, 403):
        fault = Fault.INVALID_KEY
    elif kind == "rate_limit_error" or status == 429:
        fault = Fault.RATE_LIMITED
    elif kind in _RETRYABLE_TYPES or status in (200, 408, 409) or status >= 500:
        fault = Fault.RETRYABLE
    else:
        fault = Fault.PERMANENT
    retry_after = _retry_after(error.response.headers.get("retry-after"))
    if fault is Fault.RATE_LIMITED and retry_after is None:
        retry_after = DEFAULT_RETRY_AFTER_SECONDS
    detail = _scrub(f"{status} {kind or 'error'}: {error.api_message or error.message}", key.secret)
    return Attempt(key, fault, latency_ms, status, error.request_id or "", detail, retry_after)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:  # an HTTP date: rare from this API, so the default applies
        return None


def _scrub(text: str, secret: str) -> str:
    """No key in anything stored, logged or raised: not the one in use, nothing key-shaped."""
    if secret:
        text = text.replace(secret, "[key]")
    return _KEY_LIKE.sub("sk-ant-[redacted]", text)[:500]


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _log_failure(attempt: Attempt) -> None:
    logger.warning(
        "anthropic %s attempt failed: fault=%s status=%s key=%s request_id=%s error=%s",
        OPERATION,
        attempt.fault.value,
        attempt.status_code,
        attempt.key.label,
        attempt.request_id,
        attempt.error,
    )
