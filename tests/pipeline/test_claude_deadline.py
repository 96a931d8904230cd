"""Deadlines on Claude calls: one on each attempt, one on each answer with all its retries.

``CLAUDE_TIMEOUT_SECONDS`` used to bound each read only, so a stream trickling one word at a
time ran for as long as it liked. The fake's ``SLOW_DRIP`` scenario does exactly that (sped up
here): each word comes well within the read timeout, the whole reply long after it. The
assertions are on outcomes (what was raised, stored, sent) and on how many requests the fake
received, never on how long anything took.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.cache import cache
from django.utils import timezone

from aisystem.errors import IntegrationError
from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    CircuitBreaker,
    CredentialStatus,
    ExternalCall,
    Message,
    MessageStatus,
    OutboxItem,
)
from pipeline.claude.client import ClaudeClient, ClaudeUnavailable
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import PRESETS, SLOW_DRIP, FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from pipeline.replies import DEFERRED_REPLY
from pipeline.types import ChatTurn, ClaudeRequest, InboundMessage, TextBlock
from tests.factories import ApiCredentialFactory
from tests.fakes.transport import RecordingTransport
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = ClaudeRequest(
    model="claude-sonnet-4-6",
    max_tokens=256,
    messages=(ChatTurn("user", (TextBlock("hello there"),)),),
)
# A word every 0.25 s (" drip" is two tokens), 3 s for the whole reply: each read is quick,
# the reply is not.
DRIP = replace(SLOW_DRIP, tokens_per_second=8.0)
_ids = itertools.count(1)


class RecordedSleeps:
    """Stands in for asyncio.sleep: remembers each wait and returns at once."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.durations.append(seconds)


class TextSeen:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str) -> None:
        self.texts.append(text)


@pytest.fixture(autouse=True)
def claude_settings(settings: Any) -> Iterator[None]:
    settings.ANTHROPIC_API_KEY = ""
    settings.CLAUDE = {
        **settings.CLAUDE,
        "TIMEOUT_SECONDS": 1.0,  # per read (the SDK) and per attempt (the client)
        "ANSWER_TIMEOUT_SECONDS": 60.0,
        "MAX_ATTEMPTS": 2,
        "BACKOFF_BASE_SECONDS": 0.001,
        "BACKOFF_MAX_SECONDS": 0.001,
        "BREAKER_FAILURE_THRESHOLD": 5,
    }
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def client(fake_claude: FakeClaude, sleeps: RecordedSleeps) -> AsyncIterator[ClaudeClient]:
    claude = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY, sleep=sleeps)
    yield claude
    await claude.aclose()


@sync_to_async
def stored_calls() -> list[ExternalCall]:
    return list(ExternalCall.objects.order_by("id"))


@sync_to_async
def breaker_failures() -> int:
    row = CircuitBreaker.objects.filter(service="anthropic").first()
    return row.consecutive_failures if row else 0


def test_the_slow_drip_scenario_is_a_preset() -> None:
    assert PRESETS["slow_drip"] is SLOW_DRIP
    assert SLOW_DRIP.failure.value == "none" and SLOW_DRIP.tokens_per_second


# -- one attempt ------------------------------------------------------------------------------


async def test_a_reply_still_trickling_at_the_attempt_deadline_is_cut_and_retried(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    fake_claude.set_scenario(DRIP)
    seen = TextSeen()

    with pytest.raises(IntegrationError) as raised:
        await client.create(HELLO, on_text=seen)

    assert not raised.value.permanent  # the service's trouble: the message is deferred
    assert "timeout_error" in raised.value.details
    assert len(fake_claude.requests) == 2  # cut, retried once, cut again: MAX_ATTEMPTS
    assert seen.texts and seen.texts[0].startswith("drip")  # words were arriving all along
    calls = await stored_calls()
    assert [(call.ok, call.status_code) for call in calls] == [(False, 200), (False, 200)]
    assert all(call.error.startswith("timeout_error: no complete reply") for call in calls)
    assert all(call.request_id for call in calls)
    assert await breaker_failures() == 1  # one answer that gave up: one failure


async def test_a_reply_that_finishes_within_the_attempt_deadline_is_returned(
    fake_claude: FakeClaude, client: ClaudeClient, settings: Any
) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "TIMEOUT_SECONDS": 30.0}
    fake_claude.set_scenario(replace(DRIP, reply_text="drip drip"))

    reply = await client.create(HELLO)

    assert reply.text == "drip drip"
    assert len(fake_claude.requests) == 1


# -- one answer -------------------------------------------------------------------------------


async def test_an_answer_out_of_time_stops_retrying_before_its_attempts_run_out(
    fake_claude: FakeClaude, client: ClaudeClient, settings: Any
) -> None:
    # Attempts of at most 0.4 s within an answer of 1 s: at most three attempts start, the
    # last one cut at the answer's deadline, however many attempts are allowed.
    settings.CLAUDE = {
        **settings.CLAUDE,
        "TIMEOUT_SECONDS": 0.4,
        "ANSWER_TIMEOUT_SECONDS": 1.0,
        "MAX_ATTEMPTS": 10,
    }
    fake_claude.set_scenario(DRIP)

    with pytest.raises(IntegrationError) as raised:
        await client.create(HELLO)

    assert not raised.value.permanent
    assert "no answer within 1 s" in raised.value.details
    assert 1 <= len(fake_claude.requests) <= 3
    calls = await stored_calls()
    assert len(calls) == len(fake_claude.requests)
    assert not any(call.ok for call in calls)
    assert await breaker_failures() == 1


async def test_a_cooling_key_is_not_waited_for_past_the_answers_deadline(
    fake_claude: FakeClaude, client: ClaudeClient, sleeps: RecordedSleeps, settings: Any
) -> None:
    # The only key is back in 5 s, within the in-line wait allowed (10 s), but the answer
    # has 2 s: waiting could only end in a timeout, so the call says so at once.
    settings.CLAUDE = {
        **settings.CLAUDE,
        "ANSWER_TIMEOUT_SECONDS": 2.0,
        "MAX_INLINE_WAIT_SECONDS": 10.0,
    }
    await sync_to_async(ApiCredentialFactory)(
        label="main",
        secret=PRIMARY_KEY,
        status=CredentialStatus.COOLING_DOWN,
        cooldown_until=timezone.now() + timedelta(seconds=5),
    )
    other = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key="", sleep=sleeps)
    try:
        with pytest.raises(ClaudeUnavailable):
            await other.create(HELLO)
    finally:
        await other.aclose()

    assert sleeps.durations == []
    assert fake_claude.requests == []


# -- through the pipeline ---------------------------------------------------------------------


@pytest.fixture
def allow_everyone() -> Iterator[AccessRule]:
    yield AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)


def message(text: str) -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id="42",
        chat_type=ChatType.PRIVATE,
        message_id=str(next(_ids)),
        sender_id="7",
        sender_name="Ada Lovelace",
        sent_at=timezone.now(),
        text=text,
    )


def test_a_message_whose_answer_runs_out_of_time_is_deferred_and_answered_later(
    fake_claude: FakeClaude, allow_everyone: AccessRule, sleeps: RecordedSleeps
) -> None:
    fake_claude.set_scenario(DRIP)
    transport = RecordingTransport()
    client = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY, sleep=sleeps)

    result = async_to_sync(UnifiedMessageProcessor(client=client).process_message)(
        message("are you there?"), transport
    )

    assert result.status == "deferred"
    assert transport.texts == [DEFERRED_REPLY]
    inbound = Message.objects.get(pk=result.message_id)
    assert (inbound.status, inbound.status_reason) == (
        MessageStatus.DEFERRED,
        "claude_unavailable",
    )

    fake_claude.reset()  # Claude answers promptly again
    job = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY, sleep=sleeps)
    assert deferred_answer(client=job) == 1
    inbound.refresh_from_db()
    assert inbound.status == MessageStatus.ANSWERED
    assert "are you there?" in OutboxItem.objects.get().text
