"""The Claude client's database side: picking keys, marking them, logging calls, the breaker.

Split from ``pipeline.claude.client`` (which alone imports ``anthropic``) to keep both modules
small. The client runs ``call_open`` and ``call_settle`` in a worker thread (``sync_to_async``);
each is one short hop that returns dataclasses, so a successful call costs two hops in all, or
one when the caller collects its log rows (``calls_collect``): a clean success has nothing to
store but its ``ExternalCall`` row, so the pipeline writes that row in the transaction that
records the message's outcome (``calls_record``) instead of in a transaction of its own.

Keys: active ``ApiCredential`` rows (provider "anthropic") by priority, then least recently used
(never used first); a row cooling down whose ``cooldown_until`` has passed counts as active and
is set back to active when picked. With no usable row, ``settings.ANTHROPIC_API_KEY`` (passed in
as ``fallback_secret``) is used; its cooldown and invalid mark live in the Django cache, which
every process shares, under a digest of the key (never the key). No key, and no error text
that could hold one, is ever put in an event, a log line or a row.

Metrics: each logged attempt counts in ``aisystem_claude_requests_total{outcome}`` (and its
tokens in ``aisystem_claude_tokens_total{kind}``) once its log row commits, and a call the
breaker refuses counts as ``outcome="breaker_open"``; see ``aisystem.metrics.instruments``.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from aisystem.env_key import env_key_cache_keys
from aisystem.events import system_event_emit
from aisystem.metrics.instruments import claude_request_observe
from aisystem.models import ApiCredential, CredentialStatus, Event, ExternalCall
from pipeline.claude import breaker
from pipeline.types import ClaudeReply

SERVICE = "anthropic"
OPERATION = "messages.create"
FALLBACK_LABEL = "ANTHROPIC_API_KEY"
DEFAULT_RETRY_AFTER_SECONDS = 30.0
FALLBACK_INVALID_SECONDS = 600

# What a finished call tells the breaker; "neutral" only releases a probe this call held.
Verdict = Literal["success", "failure", "neutral"]


class Fault(enum.Enum):
    """How an attempt went wrong, which decides what happens next."""

    NONE = "none"
    RETRYABLE = "retryable"  # the service's trouble: back off, try again
    RATE_LIMITED = "rate_limited"  # this key: cool it down, try another at once
    INVALID_KEY = "invalid_key"  # this key: out of rotation until staff fix it
    PERMANENT = "permanent"  # the request itself is wrong: no retry
    ABORTED = "aborted"  # cancelled, or the caller's on_text raised


@dataclass(frozen=True)
class ApiKey:
    label: str
    secret: str = field(repr=False)
    credential_id: int | None = None  # None: the ANTHROPIC_API_KEY fallback


@dataclass(frozen=True)
class KeyPick:
    """The key to use, or else the cooling key that is back soonest and in how many seconds
    (``wait_key`` None too: no key will come back by itself)."""

    key: ApiKey | None
    wait_key: ApiKey | None = None
    wait_seconds: float = 0.0


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt, as logged. ``error`` is already scrubbed of anything key-like."""

    key: ApiKey
    fault: Fault
    latency_ms: int
    status_code: int | None = None
    request_id: str = ""
    error: str = ""
    retry_after: float | None = None
    reply: ClaudeReply | None = None


@dataclass(frozen=True)
class Settlement:
    """What ``call_settle`` stores: the attempt (if one was made), the breaker verdict (None while
    the call goes on), and whether to pick the next key, leaving out ``excluded`` ids."""

    attempt: Attempt | None
    verdict: Verdict | None
    probe_claimed_at: datetime | None
    breaker_clean: bool = False  # the ticket's ``clean``: a success has nothing to reset
    pick_next: bool = False
    excluded: frozenset[int | None] = frozenset()  # credential ids; None is the fallback
    fallback_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class ClaudeStatus:
    """``usable_credentials`` counts stored keys only; the env fallback is reported apart."""

    breaker_state: str
    usable_credentials: int
    cooling_down: int
    invalid: int
    fallback_key_configured: bool


@dataclass(frozen=True)
class LoggedCall:
    """An attempt whose ``ExternalCall`` row is still to be written, and when it was settled."""

    attempt: Attempt
    at: datetime


# The list a clean success's log row goes to instead of its own transaction (see calls_collect).
_collected: ContextVar[list[LoggedCall] | None] = ContextVar("claude_calls", default=None)


@contextmanager
def calls_collect() -> Iterator[list[LoggedCall]]:
    """Within this block, and in tasks and worker threads started from it, ``call_collect``
    puts a clean success's log row in the yielded list. The caller owes those rows: it writes
    them with ``calls_record`` (in the transaction that records its own outcome, so the row
    and the answer it paid for are stored together) and then empties the list."""
    calls: list[LoggedCall] = []
    token = _collected.set(calls)
    try:
        yield calls
    finally:
        _collected.reset(token)


def call_collect(settlement: Settlement) -> bool:
    """Collect the settlement instead of storing it, when a caller collects and the log row is
    all it would store: a success, on a ticket that was clean (nothing to reset on the breaker
    or the key). True if collected; False means: call ``call_settle``."""
    calls = _collected.get()
    attempt = settlement.attempt
    if calls is None or attempt is None or attempt.fault is not Fault.NONE:
        return False
    if settlement.verdict != "success" or not settlement.breaker_clean or settlement.pick_next:
        return False
    calls.append(LoggedCall(attempt, timezone.now()))
    return True


def calls_record(calls: Sequence[LoggedCall]) -> None:
    """Write collected log rows, in one INSERT."""
    if calls:
        ExternalCall.objects.bulk_create([_call_row(call.attempt, call.at) for call in calls])
        _observe_on_commit([call.attempt for call in calls])


def call_open(now: datetime, fallback_secret: str) -> tuple[breaker.BreakerTicket, KeyPick]:
    """Ask the breaker and, if it lets the call through, pick and touch a key."""
    ticket = breaker.breaker_admit(SERVICE, now)
    if not ticket.allowed:
        claude_request_observe(outcome="breaker_open")
        return ticket, KeyPick(None)
    return ticket, key_pick(now, frozenset(), fallback_secret)


def call_settle(settlement: Settlement) -> KeyPick:
    """Log the attempt, mark its key, tell the breaker; then pick the next key if asked."""
    now = timezone.now()
    attempt = settlement.attempt
    with transaction.atomic():
        if attempt is not None:
            _record_call(attempt, now)
            _mark_key(attempt, now)
        if settlement.verdict == "success" and not settlement.breaker_clean:
            breaker.breaker_record_success(SERVICE, now=now)
        elif settlement.verdict == "failure":
            error = attempt.error if attempt else "failed"
            breaker.breaker_record_failure(SERVICE, error, now=now)
        elif settlement.verdict == "neutral" and settlement.probe_claimed_at is not None:
            breaker.breaker_release_probe(SERVICE, settlement.probe_claimed_at)
    if settlement.pick_next:
        return key_pick(now, settlement.excluded, settlement.fallback_secret)
    return KeyPick(None)


def key_pick(now: datetime, excluded: frozenset[int | None], fallback_secret: str) -> KeyPick:
    """The next key to use (and mark it used), the fallback, or the soonest to come back.

    One query reads every active or cooling row (a deployment has a handful) and the choice is
    made here: by priority, then least recently used (never used first), then pk. The rows
    also give the soonest cooling key, so the all-cooling case needs no second query."""
    rows = [_Credential(*values) for values in _CANDIDATE_KEYS.all()]
    usable = [row for row in rows if row.pk not in excluded and row.usable(now)]
    if usable:
        row = min(usable, key=_Credential.order)
        ApiCredential.objects.filter(pk=row.pk).update(last_used_at=now)
        if row.status == CredentialStatus.COOLING_DOWN:  # its cooldown is over
            ApiCredential.objects.filter(
                pk=row.pk, status=CredentialStatus.COOLING_DOWN, cooldown_until__lte=now
            ).update(status=CredentialStatus.ACTIVE, cooldown_until=None)
        return KeyPick(ApiKey(row.label, row.secret, row.pk))
    fallback = ApiKey(FALLBACK_LABEL, fallback_secret) if fallback_secret else None
    marks = cache.get_many(_fallback_cache_keys(fallback_secret)) if fallback else {}
    if fallback is not None and None not in excluded and not marks:
        return KeyPick(fallback)
    cooling = [row for row in rows if row.status == CredentialStatus.COOLING_DOWN]
    return _soonest_back(now, fallback, marks, cooling)


# Built once, evaluated as a fresh copy (``.all()``) per call: it has no per-call values, and
# composing it cost twice as much CPU as copying, compiling and running it together.
_CANDIDATE_KEYS = ApiCredential.objects.filter(
    provider=SERVICE, status__in=(CredentialStatus.ACTIVE, CredentialStatus.COOLING_DOWN)
).values_list("pk", "label", "secret", "status", "priority", "last_used_at", "cooldown_until")


@dataclass(frozen=True)
class _Credential:
    pk: int
    label: str
    secret: str = field(repr=False)
    status: str
    priority: int
    last_used_at: datetime | None
    cooldown_until: datetime | None

    def usable(self, now: datetime) -> bool:
        """Active, or cooling down with the cooldown over."""
        if self.status == CredentialStatus.ACTIVE:
            return True
        return self.cooldown_until is not None and self.cooldown_until <= now

    def order(self) -> tuple[int, float, int]:
        """Sort key: priority, then least recently used (never used first), then pk."""
        used = self.last_used_at.timestamp() if self.last_used_at is not None else -math.inf
        return (self.priority, used, self.pk)


def claude_status() -> ClaudeStatus:
    """Figures for the status command and health pages."""
    now = timezone.now()
    keys = ApiCredential.objects.filter(provider=SERVICE)
    cooling = Q(status=CredentialStatus.COOLING_DOWN, cooldown_until__gt=now)
    return ClaudeStatus(
        breaker_state=breaker.breaker_state(SERVICE),
        usable_credentials=keys.filter(_usable(now)).count(),
        cooling_down=keys.filter(cooling).count(),
        invalid=keys.filter(status=CredentialStatus.INVALID).count(),
        fallback_key_configured=bool(settings.ANTHROPIC_API_KEY),
    )


def _usable(now: datetime) -> Q:
    cooled = Q(status=CredentialStatus.COOLING_DOWN, cooldown_until__lte=now)
    return Q(status=CredentialStatus.ACTIVE) | cooled


def _soonest_back(
    now: datetime, fallback: ApiKey | None, marks: dict[str, Any], cooling: list[_Credential]
) -> KeyPick:
    options: list[tuple[float, ApiKey]] = []
    if cooling:
        row = min(cooling, key=lambda row: row.cooldown_until or now)
        until = row.cooldown_until or now
        options.append(((until - now).total_seconds(), ApiKey(row.label, row.secret, row.pk)))
    cool_key, invalid_key = _fallback_cache_keys(fallback.secret if fallback else "")
    if fallback is not None and invalid_key not in marks:
        options.append((float(marks.get(cool_key, time.time())) - time.time(), fallback))
    if not options:
        return KeyPick(None)
    seconds, key = min(options, key=lambda option: option[0])
    return KeyPick(None, wait_key=key, wait_seconds=max(seconds, 0.0))


def _fallback_cache_keys(secret: str) -> tuple[str, str]:
    """The cache keys of the env key's cooldown and invalid mark: a digest, never the key."""
    return env_key_cache_keys(secret)


def _record_call(attempt: Attempt, now: datetime) -> None:
    _call_row(attempt, now).save(force_insert=True)
    _observe_on_commit([attempt])


# An attempt's fault as the metrics' outcome label.
_OUTCOMES = {
    Fault.NONE: "ok",
    Fault.RETRYABLE: "error",
    Fault.RATE_LIMITED: "rate_limited",
    Fault.INVALID_KEY: "invalid_key",
    Fault.PERMANENT: "refused",
    Fault.ABORTED: "aborted",
}


def _observe_on_commit(attempts: Sequence[Attempt]) -> None:
    """Count the attempts in the metrics once their log rows commit."""
    transaction.on_commit(partial(_observe, list(attempts)), robust=True)


def _observe(attempts: Sequence[Attempt]) -> None:
    for attempt in attempts:
        reply = attempt.reply
        claude_request_observe(
            outcome=_OUTCOMES.get(attempt.fault, attempt.fault.value),
            input_tokens=reply.input_tokens if reply else 0,
            output_tokens=reply.output_tokens if reply else 0,
        )


def _call_row(attempt: Attempt, now: datetime) -> ExternalCall:
    reply = attempt.reply
    return ExternalCall(
        service=SERVICE,
        operation=OPERATION,
        ok=attempt.fault is Fault.NONE,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        input_tokens=reply.input_tokens if reply else 0,
        output_tokens=reply.output_tokens if reply else 0,
        request_id=attempt.request_id[:128],
        credential_id=attempt.key.credential_id,
        credential_label=attempt.key.label,
        error=attempt.error[:500],
        created_at=now,
    )


def _mark_key(attempt: Attempt, now: datetime) -> None:
    """Count a failure against the key; cool it down on a 429, retire it on a 401/403."""
    if attempt.fault in (Fault.NONE, Fault.ABORTED):
        return
    key = attempt.key
    changes: dict[str, Any] = {"failure_count": F("failure_count") + 1}
    seconds = attempt.retry_after or DEFAULT_RETRY_AFTER_SECONDS
    if attempt.fault is Fault.RATE_LIMITED:
        changes["status"] = CredentialStatus.COOLING_DOWN
        changes["cooldown_until"] = now + timedelta(seconds=seconds)
        _alert(key, "credential.cooling", f"is cooling down for {seconds:g} s", seconds=seconds)
    elif attempt.fault is Fault.INVALID_KEY:
        changes["status"] = CredentialStatus.INVALID
        _alert(key, "credential.invalid", "was refused: marked invalid", Event.Level.ERROR)
    if key.credential_id is not None:
        rows = ApiCredential.objects.filter(pk=key.credential_id)
        rows.update(**changes, last_error=attempt.error[:255], updated_at=now)
    elif attempt.fault is Fault.RATE_LIMITED:
        cool_key, _ = _fallback_cache_keys(key.secret)
        cache.set(cool_key, time.time() + seconds, timeout=max(math.ceil(seconds), 1))
    elif attempt.fault is Fault.INVALID_KEY:
        _, invalid_key = _fallback_cache_keys(key.secret)
        cache.set(invalid_key, True, timeout=FALLBACK_INVALID_SECONDS)


def _alert(
    key: ApiKey, kind: str, what: str, level: str = Event.Level.WARNING, **data: object
) -> None:
    summary = f"Anthropic key {key.label!r} {what}"
    system_event_emit(
        kind, summary, level=level, label=key.label, credential_id=key.credential_id, **data
    )
