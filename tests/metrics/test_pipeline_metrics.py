"""Messages through the real pipeline (REST API, fake Messages API on loopback) move the
counters and histograms of ``/metrics`` by what the stored rows say happened."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.utils import timezone

from aisystem.models import CircuitBreaker, Direction, ExternalCall, Message, RateLimitPolicy
from aisystem.services.tokens import api_token_create
from pipeline.fakeclaude import UNAUTHORIZED, FakeClaude
from tests.conftest import PRIMARY_KEY
from tests.metrics.scrape import Scrape, ascrape, bearer

pytestmark = pytest.mark.django_db(transaction=True)
STEPS = ("gate", "context", "route", "agent", "delivery")


@pytest.fixture(autouse=True)
def claude_points_at_the_fake(fake_claude: FakeClaude) -> Iterator[None]:
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.fixture
def sender() -> str:
    return api_token_create(name="integration")[1]


@pytest.fixture
def scraper() -> str:
    return api_token_create(name="prometheus", allow=False)[1]


async def send(token: str, text: str, user_id: str = "u1") -> dict[str, Any]:
    response = await AsyncClient().post(
        "/api/v1/messages",
        data=json.dumps({"chat_id": "c1", "user_id": user_id, "text": text}),
        content_type="application/json",
        headers=bearer(token),
    )
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def step_count(after: Scrape, before: Scrape, step: str) -> float:
    return after.delta(before, "aisystem_pipeline_step_seconds_count", step=step)


async def test_an_answered_message_counts_once_with_each_of_its_steps(
    sender: str, scraper: str
) -> None:
    before = await ascrape(scraper)

    body = await send(sender, "Hello metrics")

    after = await ascrape(scraper)
    assert body["status"] == "answered"
    assert after.delta(before, "aisystem_messages_total", transport="api", status="answered") == 1
    for step in STEPS:
        assert step_count(after, before, step) == 1, step
        assert after.delta(
            before, "aisystem_pipeline_step_seconds_sum", step=step
        ) == pytest.approx(body["timings_ms"][step] / 1000, abs=1e-6)
    assert step_count(after, before, "command") == 0


async def test_the_claude_call_counts_with_the_tokens_and_cost_that_were_stored(
    sender: str, scraper: str
) -> None:
    before = await ascrape(scraper)

    await send(sender, "Count my tokens, please")

    after = await ascrape(scraper)
    call = await ExternalCall.objects.aget(service="anthropic")
    reply = await Message.objects.aget(direction=Direction.OUTBOUND)
    assert call.input_tokens > 0 and call.output_tokens > 0 and reply.cost_usd > 0
    assert after.delta(before, "aisystem_claude_requests_total", outcome="ok") == 1
    assert after.delta(before, "aisystem_claude_tokens_total", kind="input") == call.input_tokens
    assert after.delta(before, "aisystem_claude_tokens_total", kind="output") == call.output_tokens
    assert after.delta(before, "aisystem_cost_usd_total") == pytest.approx(float(reply.cost_usd))


async def test_a_rejected_message_counts_as_rejected_with_its_gate_time_only(
    sender: str, scraper: str
) -> None:
    await RateLimitPolicy.objects.acreate(
        name="guests", role="guest", messages_per_window=1, window_seconds=3600
    )
    assert (await send(sender, "one"))["status"] == "answered"
    before = await ascrape(scraper)

    body = await send(sender, "two")

    after = await ascrape(scraper)
    assert body["status"] == "rejected"
    assert after.delta(before, "aisystem_messages_total", transport="api", status="rejected") == 1
    assert after.delta(before, "aisystem_messages_total", transport="api", status="answered") == 0
    assert step_count(after, before, "gate") == 1
    assert step_count(after, before, "context") == 0
    assert step_count(after, before, "agent") == 0


async def test_a_refused_key_counts_as_invalid_key_and_the_message_as_deferred(
    sender: str, scraper: str, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(UNAUTHORIZED)
    before = await ascrape(scraper)

    body = await send(sender, "hi")

    after = await ascrape(scraper)
    assert body["status"] == "deferred"
    refused = await ExternalCall.objects.filter(service="anthropic", status_code=401).acount()
    assert refused == 1
    assert after.delta(before, "aisystem_claude_requests_total", outcome="invalid_key") == refused
    assert after.delta(before, "aisystem_claude_requests_total", outcome="ok") == 0
    assert after.delta(before, "aisystem_messages_total", transport="api", status="deferred") == 1
    assert after.delta(before, "aisystem_claude_tokens_total", kind="input") == 0
    assert after.delta(before, "aisystem_cost_usd_total") == 0


async def test_a_call_the_open_breaker_refuses_counts_as_breaker_open(
    sender: str, scraper: str, fake_claude: FakeClaude
) -> None:
    await CircuitBreaker.objects.acreate(
        service="anthropic",
        state=CircuitBreaker.State.OPEN,
        opened_at=timezone.now(),
        open_until=timezone.now() + timedelta(minutes=5),
    )
    before = await ascrape(scraper)

    body = await send(sender, "hi")

    after = await ascrape(scraper)
    assert body["status"] == "deferred"
    assert fake_claude.requests == []
    assert after.delta(before, "aisystem_claude_requests_total", outcome="breaker_open") == 1
    assert after.delta(before, "aisystem_messages_total", transport="api", status="deferred") == 1
