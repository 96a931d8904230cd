"""A circuit breaker whose state lives in the ``CircuitBreaker`` row, so every process shares it.

closed: calls flow; each failed call adds to ``consecutive_failures`` and a success resets it.
At ``failure_threshold`` the breaker opens for ``open_seconds`` (event ``breaker.opened``).
open: every call is refused. Once ``open_until`` has passed, the first caller to claim the probe
turns it half-open and is let through; everyone else is still refused.
half_open: the probe's success closes the breaker (event ``breaker.closed``), its failure opens it
again for another ``open_seconds``. A probe that ends without a verdict (cancelled, no usable
key, a bad request) is released so the next caller probes at once.

The probe is held on a lease: claiming it sets ``open_until`` (in this state: until when the
others are refused) to ``probe_lease_seconds`` ahead, and the prober renews it
(``breaker_renew_probe``) while its call runs. A process killed mid-probe stops renewing, so
its probe is taken over ``probe_lease_seconds`` after the last renewal rather than blocking
every call for a whole ``open_seconds``. ``probe_started_at`` stays as claimed: it names the
probe, so a prober whose lease was taken over can neither renew nor release the new one.

What counts as a failure is the caller's choice; the Claude client records one failure per
``create()`` that gave up after its retries (see ``pipeline.claude``). To keep the hot path to
one write, a successful call whose ticket was ``clean`` records nothing: the count it would reset
was zero when it started, and failures counted while it was in flight keep counting.

Every change is one conditional ``UPDATE ... WHERE state = ...`` whose row count says whether
this caller won, so of two racing processes only one can open, claim or close, on Postgres and
SQLite alike. Callers pass ``now`` so that tests can drive the clock with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from aisystem.events import system_event_emit
from aisystem.models import CircuitBreaker, Event

State = CircuitBreaker.State


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int
    open_seconds: int
    probe_lease_seconds: int = 10


@dataclass(frozen=True)
class BreakerTicket:
    """``allowed`` says whether the caller may call the service; ``probe_claimed_at`` is set
    when this caller holds the half-open probe (pass it to ``breaker_release_probe``).
    ``clean`` means the breaker was closed with no failure counted when the call was let in."""

    allowed: bool
    probe_claimed_at: datetime | None = None
    clean: bool = False


def breaker_policy() -> BreakerPolicy:
    """The Claude breaker's figures from ``settings.CLAUDE``, read at call time."""
    return BreakerPolicy(
        failure_threshold=int(settings.CLAUDE["BREAKER_FAILURE_THRESHOLD"]),
        open_seconds=int(settings.CLAUDE["BREAKER_OPEN_SECONDS"]),
        probe_lease_seconds=int(settings.CLAUDE["BREAKER_PROBE_LEASE_SECONDS"]),
    )


def breaker_admit(
    service: str, now: datetime, *, policy: BreakerPolicy | None = None
) -> BreakerTicket:
    """May a call go out now? Closed (or no row yet): yes. Open or half-open before
    ``open_until`` (the open period, or the probe's lease): no. After it: yes for the one caller
    that claims the probe (a new one, or one whose prober stopped renewing it)."""
    rows = list(_state_query(service).all())
    row = rows[0] if rows else None
    if row is None or row["state"] == State.CLOSED:
        clean = row is None or row["consecutive_failures"] == 0
        return BreakerTicket(allowed=True, clean=clean)
    if row["open_until"] is not None and row["open_until"] > now:
        return BreakerTicket(allowed=False)
    policy = policy or breaker_policy()
    due = Q(state__in=(State.OPEN, State.HALF_OPEN)) & (
        Q(open_until__lte=now) | Q(open_until__isnull=True)
    )
    claimed = (
        _rows(service)
        .filter(due)
        .update(
            state=State.HALF_OPEN,
            probe_started_at=now,
            open_until=now + timedelta(seconds=policy.probe_lease_seconds),
            updated_at=now,
        )
    )
    return BreakerTicket(allowed=True, probe_claimed_at=now) if claimed else BreakerTicket(False)


def breaker_renew_probe(
    service: str,
    claimed_at: datetime,
    *,
    now: datetime | None = None,
    policy: BreakerPolicy | None = None,
) -> bool:
    """Extend the lease of the probe claimed at ``claimed_at`` to ``probe_lease_seconds`` from
    ``now``. False if it is not ours any more (settled, released, or taken over after our lease
    ran out): the caller stops renewing."""
    now = now or timezone.now()
    policy = policy or breaker_policy()
    renewed = (
        _rows(service)
        .filter(state=State.HALF_OPEN, probe_started_at=claimed_at)
        .update(open_until=now + timedelta(seconds=policy.probe_lease_seconds), updated_at=now)
    )
    return bool(renewed)


def breaker_allow(service: str, now: datetime, *, policy: BreakerPolicy | None = None) -> bool:
    """``breaker_admit(...).allowed``: True means this caller may call the service now."""
    return breaker_admit(service, now, policy=policy).allowed


def breaker_record_success(service: str, *, now: datetime | None = None) -> bool:
    """The service answered: close the breaker and reset the count. True if it was not closed."""
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        closed = (
            _rows(service)
            .exclude(state=State.CLOSED)
            .update(
                state=State.CLOSED,
                consecutive_failures=0,
                open_until=None,
                probe_started_at=None,
                updated_at=now,
            )
        )
        if closed:
            system_event_emit(
                "breaker.closed",
                f"{service}: circuit breaker closed, calls flow again",
                level=Event.Level.INFO,
                service=service,
            )
        else:
            _rows(service).filter(consecutive_failures__gt=0).update(
                consecutive_failures=0, updated_at=now
            )
    return bool(closed)


def breaker_record_failure(
    service: str, error: str, *, now: datetime | None = None, policy: BreakerPolicy | None = None
) -> bool:
    """One failed call: count it; open the breaker at the threshold, or re-open it if this was
    the half-open probe. True if this call opened it. ``error`` must hold no secret."""
    now = now or timezone.now()
    policy = policy or breaker_policy()
    error = error[:255]
    opening = {
        "state": State.OPEN,
        "opened_at": now,
        "open_until": now + timedelta(seconds=policy.open_seconds),
        "probe_started_at": None,
    }
    with transaction.atomic(savepoint=False):
        CircuitBreaker.objects.get_or_create(service=service)
        rows = _rows(service)
        rows.update(
            consecutive_failures=F("consecutive_failures") + 1, last_error=error, updated_at=now
        )
        reached = Q(state=State.CLOSED, consecutive_failures__gte=policy.failure_threshold)
        opened = rows.filter(reached | Q(state=State.HALF_OPEN)).update(**opening)
        if opened:
            system_event_emit(
                "breaker.opened",
                f"{service}: circuit breaker opened for {policy.open_seconds} s",
                level=Event.Level.ERROR,
                service=service,
                open_seconds=policy.open_seconds,
                error=error,
            )
    return bool(opened)


def breaker_release_probe(service: str, claimed_at: datetime) -> bool:
    """The probe claimed at ``claimed_at`` ended without a verdict: back to open with
    ``open_until`` passed, so the next caller probes. False if the probe was not ours any more."""
    released = (
        _rows(service)
        .filter(state=State.HALF_OPEN, probe_started_at=claimed_at)
        .update(state=State.OPEN, probe_started_at=None, open_until=claimed_at)
    )
    return bool(released)


def breaker_state(service: str) -> str:
    """The stored state ("closed" when the service has no row yet)."""
    state = _rows(service).values_list("state", flat=True).first()
    return str(state) if state is not None else str(State.CLOSED)


def _rows(service: str) -> QuerySet[CircuitBreaker]:
    return CircuitBreaker.objects.filter(service=service)


# Every call reads the state: the query is built once per service and copied (``.all()``) for
# each use, which costs half as much CPU as composing it again.
_STATE_QUERIES: dict[str, QuerySet[CircuitBreaker, dict[str, Any]]] = {}


def _state_query(service: str) -> QuerySet[CircuitBreaker, dict[str, Any]]:
    query = _STATE_QUERIES.get(service)
    if query is None:
        fields = ("state", "open_until", "consecutive_failures")
        query = _STATE_QUERIES[service] = _rows(service).values(*fields)[:1]
    return query
