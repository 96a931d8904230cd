"""The shared circuit breaker, driven with plain values: a service name, a clock, a policy."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from aisystem.models import CircuitBreaker, Event
from pipeline.claude.breaker import (
    BreakerPolicy,
    breaker_admit,
    breaker_allow,
    breaker_record_failure,
    breaker_record_success,
    breaker_release_probe,
    breaker_state,
)

SERVICE = "anthropic"
POLICY = BreakerPolicy(failure_threshold=3, open_seconds=30)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def seconds_later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def open_breaker() -> None:
    for _ in range(POLICY.failure_threshold):
        breaker_record_failure(SERVICE, "500 api_error", now=T0, policy=POLICY)


def test_a_service_without_history_is_closed_and_allowed() -> None:
    assert breaker_state(SERVICE) == "closed"
    assert breaker_allow(SERVICE, T0, policy=POLICY) is True


def test_a_ticket_is_clean_only_while_no_failure_is_counted() -> None:
    assert breaker_admit(SERVICE, T0, policy=POLICY).clean is True

    breaker_record_failure(SERVICE, "boom", now=T0, policy=POLICY)

    ticket = breaker_admit(SERVICE, T0, policy=POLICY)
    assert (ticket.allowed, ticket.clean) == (True, False)


def test_it_stays_closed_below_the_threshold() -> None:
    opened = [breaker_record_failure(SERVICE, "boom", now=T0, policy=POLICY) for _ in range(2)]

    assert opened == [False, False]
    assert breaker_state(SERVICE) == "closed"
    assert breaker_allow(SERVICE, T0, policy=POLICY) is True


def test_it_opens_at_the_threshold_and_says_so_once() -> None:
    opened = [breaker_record_failure(SERVICE, "boom", now=T0, policy=POLICY) for _ in range(4)]

    assert opened == [False, False, True, False]
    row = CircuitBreaker.objects.get(service=SERVICE)
    assert row.state == "open"
    assert row.open_until == seconds_later(30)
    assert row.last_error == "boom"
    event = Event.objects.get(kind="breaker.opened")
    assert event.level == "error"
    assert event.data["service"] == SERVICE


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker_record_failure(SERVICE, "boom", now=T0, policy=POLICY)
    breaker_record_failure(SERVICE, "boom", now=T0, policy=POLICY)
    breaker_record_success(SERVICE, now=T0)
    opened = breaker_record_failure(SERVICE, "boom", now=T0, policy=POLICY)

    assert opened is False
    assert CircuitBreaker.objects.get(service=SERVICE).consecutive_failures == 1
    assert not Event.objects.filter(kind="breaker.closed").exists()  # it never was open


def test_an_open_breaker_refuses_calls_until_its_time_is_up() -> None:
    open_breaker()

    assert breaker_allow(SERVICE, seconds_later(1), policy=POLICY) is False
    assert breaker_allow(SERVICE, seconds_later(29.9), policy=POLICY) is False
    assert breaker_state(SERVICE) == "open"


def test_after_its_time_only_one_caller_claims_the_half_open_probe() -> None:
    open_breaker()
    later = seconds_later(31)

    first = breaker_admit(SERVICE, later, policy=POLICY)
    second = breaker_admit(SERVICE, later, policy=POLICY)

    assert first.allowed is True
    assert first.probe_claimed_at == later
    assert second.allowed is False
    assert breaker_state(SERVICE) == "half_open"


def test_the_probes_success_closes_the_breaker() -> None:
    open_breaker()
    assert breaker_allow(SERVICE, seconds_later(31), policy=POLICY)

    closed = breaker_record_success(SERVICE, now=seconds_later(32))

    assert closed is True
    assert breaker_state(SERVICE) == "closed"
    assert breaker_allow(SERVICE, seconds_later(33), policy=POLICY) is True
    assert CircuitBreaker.objects.get(service=SERVICE).consecutive_failures == 0
    assert Event.objects.get(kind="breaker.closed").level == "info"


def test_the_probes_failure_opens_the_breaker_for_another_period() -> None:
    open_breaker()
    assert breaker_allow(SERVICE, seconds_later(31), policy=POLICY)

    reopened = breaker_record_failure(SERVICE, "529", now=seconds_later(32), policy=POLICY)

    assert reopened is True
    assert breaker_state(SERVICE) == "open"
    assert breaker_allow(SERVICE, seconds_later(61), policy=POLICY) is False
    assert breaker_allow(SERVICE, seconds_later(63), policy=POLICY) is True
    assert Event.objects.filter(kind="breaker.opened").count() == 2


def test_a_probe_that_never_reported_back_may_be_claimed_again_once_its_lease_is_over() -> None:
    open_breaker()
    assert breaker_allow(SERVICE, seconds_later(31), policy=POLICY)  # its process then dies

    lease = POLICY.probe_lease_seconds
    assert breaker_allow(SERVICE, seconds_later(31 + lease - 0.1), policy=POLICY) is False
    assert breaker_allow(SERVICE, seconds_later(31 + lease), policy=POLICY) is True
    assert breaker_allow(SERVICE, seconds_later(31 + lease), policy=POLICY) is False


def test_a_released_probe_lets_the_next_caller_probe_at_once() -> None:
    open_breaker()
    ticket = breaker_admit(SERVICE, seconds_later(31), policy=POLICY)
    assert ticket.probe_claimed_at is not None

    released = breaker_release_probe(SERVICE, ticket.probe_claimed_at)

    assert released is True
    assert breaker_state(SERVICE) == "open"
    assert breaker_allow(SERVICE, seconds_later(32), policy=POLICY) is True


def test_a_probe_claimed_again_by_someone_else_is_not_released_by_the_first_claimant() -> None:
    open_breaker()
    stale = breaker_admit(SERVICE, seconds_later(31), policy=POLICY)
    fresh = breaker_admit(SERVICE, seconds_later(62), policy=POLICY)
    assert stale.probe_claimed_at is not None
    assert fresh.allowed is True

    assert breaker_release_probe(SERVICE, stale.probe_claimed_at) is False
    assert breaker_allow(SERVICE, seconds_later(63), policy=POLICY) is False


@pytest.mark.django_db(transaction=True)
def test_of_many_threads_racing_for_the_probe_exactly_one_wins() -> None:
    open_breaker()
    later = seconds_later(31)
    start = threading.Barrier(6)
    results: list[bool] = []

    def claim() -> None:
        try:
            start.wait(timeout=10)
            results.append(breaker_allow(SERVICE, later, policy=POLICY))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False] * 5 + [True]
