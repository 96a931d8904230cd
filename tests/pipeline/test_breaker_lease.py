"""The half-open probe's lease: a dead prober's probe is taken over within the lease, a live
prober keeps it by renewing it, and a prober that lost it can neither renew nor release it.

The breaker functions are driven with a plain clock; the client is driven for real (the SDK
against the fake Messages API) with the probe claimed in the database as another process
would have left it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from aisystem.models import CircuitBreaker
from pipeline.claude.breaker import (
    BreakerPolicy,
    breaker_admit,
    breaker_allow,
    breaker_record_failure,
    breaker_record_success,
    breaker_release_probe,
    breaker_renew_probe,
    breaker_state,
)
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import SLOW_DRIP, FakeClaude
from pipeline.types import ChatTurn, ClaudeRequest, TextBlock
from tests.pipeline.conftest import PRIMARY_KEY

SERVICE = "anthropic"
POLICY = BreakerPolicy(failure_threshold=3, open_seconds=30, probe_lease_seconds=5)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HELLO = ClaudeRequest(
    model="claude-sonnet-4-6", max_tokens=64, messages=(ChatTurn("user", (TextBlock("hi"),)),)
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def open_breaker(now: datetime = T0) -> None:
    for _ in range(POLICY.failure_threshold):
        breaker_record_failure(SERVICE, "500 api_error", now=now, policy=POLICY)


# -- the lease, with a plain clock -------------------------------------------------------------


@pytest.mark.django_db
def test_a_dead_probers_probe_is_taken_over_when_its_lease_ends() -> None:
    open_breaker()
    dead = breaker_admit(SERVICE, at(31), policy=POLICY)  # then its process is killed
    assert dead.probe_claimed_at == at(31)

    assert breaker_allow(SERVICE, at(35.9), policy=POLICY) is False  # still within its lease
    taken = breaker_admit(SERVICE, at(36), policy=POLICY)

    assert taken.allowed and taken.probe_claimed_at == at(36)
    assert breaker_state(SERVICE) == "half_open"
    assert breaker_allow(SERVICE, at(36), policy=POLICY) is False  # one probe at a time


@pytest.mark.django_db
def test_a_probe_kept_renewed_is_not_taken_over() -> None:
    open_breaker()
    probe = breaker_admit(SERVICE, at(31), policy=POLICY)
    assert probe.probe_claimed_at is not None

    for second in (34, 38, 42):
        assert breaker_renew_probe(SERVICE, probe.probe_claimed_at, now=at(second), policy=POLICY)
        assert breaker_allow(SERVICE, at(second + 4.9), policy=POLICY) is False

    assert breaker_allow(SERVICE, at(47), policy=POLICY) is True  # renewals stopped at 42


@pytest.mark.django_db
def test_a_prober_that_lost_its_lease_can_neither_renew_nor_release_the_new_probe() -> None:
    open_breaker()
    slow = breaker_admit(SERVICE, at(31), policy=POLICY)
    fresh = breaker_admit(SERVICE, at(37), policy=POLICY)
    assert slow.probe_claimed_at is not None and fresh.probe_claimed_at is not None

    assert breaker_renew_probe(SERVICE, slow.probe_claimed_at, now=at(38), policy=POLICY) is False
    assert breaker_release_probe(SERVICE, slow.probe_claimed_at) is False
    assert breaker_allow(SERVICE, at(38), policy=POLICY) is False  # the fresh probe holds
    assert breaker_renew_probe(SERVICE, fresh.probe_claimed_at, now=at(38), policy=POLICY)


@pytest.mark.django_db
def test_a_settled_probe_is_not_renewed_into_the_closed_breaker() -> None:
    open_breaker()
    probe = breaker_admit(SERVICE, at(31), policy=POLICY)
    assert probe.probe_claimed_at is not None
    breaker_record_success(SERVICE, now=at(32))

    assert breaker_renew_probe(SERVICE, probe.probe_claimed_at, now=at(33), policy=POLICY) is False
    row = CircuitBreaker.objects.get(service=SERVICE)
    assert (row.state, row.open_until, row.probe_started_at) == ("closed", None, None)


@pytest.mark.django_db
def test_the_open_period_is_unchanged_by_the_lease() -> None:
    open_breaker()
    assert breaker_allow(SERVICE, at(29.9), policy=POLICY) is False
    assert breaker_allow(SERVICE, at(30), policy=POLICY) is True


# -- the client --------------------------------------------------------------------------------


@pytest.fixture
def lease_settings(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    settings.CLAUDE = {
        **settings.CLAUDE,
        "BREAKER_FAILURE_THRESHOLD": 3,
        "BREAKER_OPEN_SECONDS": 30,
        "BREAKER_PROBE_LEASE_SECONDS": 2,
        "TIMEOUT_SECONDS": 30,
        "MAX_ATTEMPTS": 1,
    }
    cache.clear()


@pytest.fixture
async def client(fake_claude: FakeClaude, lease_settings: None) -> AsyncIterator[ClaudeClient]:
    claude = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    yield claude
    await claude.aclose()


@sync_to_async
def a_probe_left_by_a_killed_process(*, seconds_ago: float) -> None:
    """The breaker as a process leaves it when killed (kill -9) while probing: half-open,
    claimed ``seconds_ago``, its lease never renewed."""
    claimed = timezone.now() - timedelta(seconds=seconds_ago)
    policy = BreakerPolicy(failure_threshold=3, open_seconds=30, probe_lease_seconds=2)
    open_breaker(now=claimed - timedelta(seconds=31))
    assert breaker_admit(SERVICE, claimed, policy=policy).allowed


@pytest.mark.django_db(transaction=True)
async def test_a_call_takes_over_the_probe_of_a_killed_process_once_its_lease_ran_out(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    # Killed 3 s ago: well inside the 30 s open period, past the 2 s lease.
    await a_probe_left_by_a_killed_process(seconds_ago=3)

    reply = await client.create(HELLO)

    assert reply.text == "You said: hi"
    assert await sync_to_async(breaker_state)(SERVICE) == "closed"
    assert len(fake_claude.requests) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_long_probe_call_keeps_its_probe_while_it_runs(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    await sync_to_async(open_breaker)(timezone.now() - timedelta(seconds=31))
    # Twelve words, a quarter of a second each: the probe call outlives its 2 s lease.
    fake_claude.set_scenario(replace(SLOW_DRIP, tokens_per_second=8.0))
    others: list[bool] = []

    async def meanwhile(text: str) -> None:
        if text.count("drip") == 12:  # the last word: 3 s or more after the probe was claimed
            others.append(await sync_to_async(breaker_allow)(SERVICE, timezone.now()))

    reply = await client.create(HELLO, on_text=meanwhile)

    assert reply.text.count("drip") == 12
    assert others == [False]  # nobody else probed meanwhile: the lease was renewed
    assert await sync_to_async(breaker_state)(SERVICE) == "closed"
    assert len(fake_claude.requests) == 1
