"""The Claude client, with the real anthropic SDK against the fake Messages API on loopback.

Waits go through an injected ``sleep`` that only records, so backoff is asserted, not waited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from aisystem.errors import IntegrationError
from aisystem.models import ApiCredential, CircuitBreaker, CredentialStatus, Event, ExternalCall
from pipeline.claude.breaker import BreakerPolicy, breaker_record_failure, breaker_state
from pipeline.claude.client import ClaudeClient, ClaudeUnavailable, claude_status, retry_delay
from pipeline.fakeclaude import (
    DROP_CONNECTION,
    NO_MESSAGE_STOP,
    OVERLOADED,
    RATE_LIMITED,
    SERVER_ERROR,
    SLOW,
    STREAM_ERROR,
    TOOL_USE,
    TRUNCATED_STREAM,
    Failure,
    FakeClaude,
    Scenario,
)
from pipeline.types import (
    ChatTurn,
    ClaudeRequest,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from tests.factories import ApiCredentialFactory
from tests.pipeline.conftest import PRIMARY_KEY, SECONDARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-4-6"
HELLO = ClaudeRequest(
    model=MODEL, max_tokens=256, messages=(ChatTurn("user", (TextBlock("hello there"),)),)
)
ECHO = "You said: hello there"
BROKEN_STREAMS = [STREAM_ERROR, DROP_CONNECTION, NO_MESSAGE_STOP, TRUNCATED_STREAM]


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
def claude_settings(settings: Any, transactional_db: None) -> Iterator[None]:
    settings.ANTHROPIC_API_KEY = ""
    settings.CLAUDE = {
        **settings.CLAUDE,
        "MAX_ATTEMPTS": 3,
        "BACKOFF_BASE_SECONDS": 1.0,
        "BACKOFF_MAX_SECONDS": 3.0,
        "MAX_INLINE_WAIT_SECONDS": 10.0,
        "BREAKER_FAILURE_THRESHOLD": 5,
        "BREAKER_OPEN_SECONDS": 30,
    }
    cache.clear()  # the env key's cooldown and invalid marks live there
    yield
    cache.clear()


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def client(fake_claude: FakeClaude, sleeps: RecordedSleeps) -> AsyncIterator[ClaudeClient]:
    claude = ClaudeClient(base_url=fake_claude.base_url, sleep=sleeps)
    yield claude
    await claude.aclose()


@sync_to_async
def add_key(
    label: str,
    secret: str,
    *,
    priority: int = 0,
    status: str = CredentialStatus.ACTIVE,
    last_used_at: datetime | None = None,
    cooldown_until: datetime | None = None,
) -> int:
    credential = ApiCredentialFactory(
        label=label,
        secret=secret,
        priority=priority,
        status=status,
        last_used_at=last_used_at,
        cooldown_until=cooldown_until,
    )
    return int(credential.pk)


@sync_to_async
def credential(pk: int) -> ApiCredential:
    return ApiCredential.objects.get(pk=pk)


@sync_to_async
def stored_calls() -> list[ExternalCall]:
    return list(ExternalCall.objects.order_by("id"))


@sync_to_async
def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind).order_by("id"))


@sync_to_async
def open_breaker(*, until: datetime) -> None:
    CircuitBreaker.objects.create(
        service="anthropic", state="open", consecutive_failures=5, open_until=until
    )


state_of_breaker = sync_to_async(breaker_state)


def restarts(texts: list[str]) -> int:
    """How often the accumulated text shrank: each is an attempt starting again from ""."""
    return sum(1 for before, after in pairwise(texts) if len(after) < len(before))


# -- answers ----------------------------------------------------------------------------------


async def test_it_streams_the_accumulated_text_and_returns_the_usage(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    await add_key("main", PRIMARY_KEY)
    seen = TextSeen()

    reply = await client.create(HELLO, on_text=seen)

    assert reply.text == ECHO
    assert len(seen.texts) > 1
    assert seen.texts[-1] == ECHO
    assert all(ECHO.startswith(text) for text in seen.texts)
    assert (reply.stop_reason, reply.model) == ("end_turn", MODEL)
    assert reply.input_tokens > 0
    assert reply.output_tokens > 0
    assert reply.request_id == fake_claude.last_request.request_id
    assert reply.credential_label == "main"
    assert fake_claude.last_request.stream
    [call] = await stored_calls()
    assert (call.ok, call.status_code, call.credential_label) == (True, 200, "main")
    assert (call.input_tokens, call.output_tokens) == (reply.input_tokens, reply.output_tokens)
    assert call.request_id == reply.request_id


async def test_it_parses_a_tool_use_reply(fake_claude: FakeClaude, client: ClaudeClient) -> None:
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(TOOL_USE)

    reply = await client.create(HELLO)

    assert reply.stop_reason == "tool_use"
    assert reply.text == "Checking."
    [tool] = reply.tool_uses
    assert tool.name == "get_weather"
    assert dict(tool.input) == {"city": "Paris", "unit": "celsius"}
    assert tool.id.startswith("toolu")


async def test_it_sends_images_documents_tools_and_tool_results_in_the_api_shape(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    await add_key("main", PRIMARY_KEY)
    request = ClaudeRequest(
        model=MODEL,
        max_tokens=256,
        system="Be brief.",
        tools=(ToolSpec("get_weather", "The weather", {"type": "object"}),),
        messages=(
            ChatTurn(
                "user",
                (
                    TextBlock("look"),
                    ImageBlock("image/png", "aW1hZ2U="),
                    DocumentBlock("JVBERi0="),
                    DocumentBlock("JVBERi0=", title="Report"),
                ),
            ),
            ChatTurn("assistant", (ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),)),
            ChatTurn("user", (ToolResultBlock("toolu_1", "sunny", is_error=True),)),
        ),
    )

    await client.create(request)

    body = fake_claude.last_request.body
    assert body is not None
    assert body["system"] == "Be brief."
    assert body["tools"] == [
        {"name": "get_weather", "description": "The weather", "input_schema": {"type": "object"}}
    ]
    user, assistant, result = (message["content"] for message in body["messages"])
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
    assert user == [
        {"type": "text", "text": "look"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "aW1hZ2U="},
        },
        {"type": "document", "source": pdf},
        {"type": "document", "source": pdf, "title": "Report"},
    ]
    assert assistant == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert result == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny", "is_error": True}
    ]


# -- keys -------------------------------------------------------------------------------------


async def test_it_uses_keys_by_priority_then_least_recently_used(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    now = timezone.now()
    await add_key("backup", SECONDARY_KEY, priority=1)
    await add_key("used-lately", PRIMARY_KEY, last_used_at=now - timedelta(minutes=1))
    await add_key("used-long-ago", PRIMARY_KEY, last_used_at=now - timedelta(minutes=10))
    await add_key("never-used", PRIMARY_KEY)

    labels = [(await client.create(HELLO)).credential_label for _ in range(4)]

    assert labels == ["never-used", "used-long-ago", "used-lately", "never-used"]
    assert SECONDARY_KEY not in {request.api_key for request in fake_claude.requests}


async def test_it_rotates_to_the_next_key_after_429(
    fake_claude: FakeClaude, client: ClaudeClient, sleeps: RecordedSleeps
) -> None:
    first = await add_key("first", PRIMARY_KEY, priority=0)
    await add_key("second", SECONDARY_KEY, priority=1)
    fake_claude.set_scenario(RATE_LIMITED, api_key=PRIMARY_KEY, times=1)  # retry-after: 1

    reply = await client.create(HELLO)

    assert reply.credential_label == "second"
    assert [request.api_key for request in fake_claude.requests] == [PRIMARY_KEY, SECONDARY_KEY]
    assert sleeps.durations == []
    cooled = await credential(first)
    assert cooled.status == CredentialStatus.COOLING_DOWN
    assert cooled.cooldown_until is not None
    assert timezone.now() < cooled.cooldown_until <= timezone.now() + timedelta(seconds=1)
    assert cooled.failure_count == 1
    assert "rate_limit_error" in cooled.last_error
    [event] = await events("credential.cooling")
    assert event.data["label"] == "first"
    limited, answered = await stored_calls()
    assert (limited.ok, limited.status_code, limited.credential_id) == (False, 429, first)
    assert (answered.ok, answered.credential_label) == (True, "second")


async def test_a_key_whose_cooldown_has_passed_is_used_again(client: ClaudeClient) -> None:
    rested = await add_key(
        "rested",
        PRIMARY_KEY,
        status=CredentialStatus.COOLING_DOWN,
        cooldown_until=timezone.now() - timedelta(seconds=1),
    )

    reply = await client.create(HELLO)

    assert reply.credential_label == "rested"
    row = await credential(rested)
    assert (row.status, row.cooldown_until) == (CredentialStatus.ACTIVE, None)
    assert row.last_used_at is not None


async def test_it_waits_out_a_short_retry_after_when_every_key_is_cooling(
    fake_claude: FakeClaude, client: ClaudeClient, sleeps: RecordedSleeps
) -> None:
    await add_key("only", PRIMARY_KEY)
    slow_down = Scenario(name="slow_down", failure=Failure.RATE_LIMITED, retry_after_seconds=3)
    fake_claude.set_scenario(slow_down, times=1)

    reply = await client.create(HELLO)

    assert reply.text == ECHO
    assert sleeps.durations == [pytest.approx(3, abs=0.5)]
    assert len(fake_claude.requests) == 2


async def test_it_is_unavailable_when_every_key_cools_down_for_longer_than_it_may_wait(
    fake_claude: FakeClaude, client: ClaudeClient, sleeps: RecordedSleeps
) -> None:
    await add_key("only", PRIMARY_KEY)
    fake_claude.set_scenario(
        Scenario(name="go_away", failure=Failure.RATE_LIMITED, retry_after_seconds=60)
    )

    with pytest.raises(ClaudeUnavailable):
        await client.create(HELLO)
    with pytest.raises(ClaudeUnavailable):
        await client.create(HELLO)

    assert len(fake_claude.requests) == 1  # the second call did not even try
    assert sleeps.durations == []


async def test_it_marks_a_refused_key_invalid_and_moves_to_the_next(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    revoked = await add_key("revoked", "sk-ant-revoked-0001", priority=0)
    await add_key("good", PRIMARY_KEY, priority=1)

    first = await client.create(HELLO)
    second = await client.create(HELLO)

    assert (first.credential_label, second.credential_label) == ("good", "good")
    assert len(fake_claude.requests) == 3  # the revoked key was tried once
    row = await credential(revoked)
    assert row.status == CredentialStatus.INVALID
    assert "authentication_error" in row.last_error
    assert "sk-ant-revoked" not in row.last_error
    [event] = await events("credential.invalid")
    assert (event.level, event.data["label"]) == ("error", "revoked")
    assert await state_of_breaker("anthropic") == "closed"
    assert not await sync_to_async(CircuitBreaker.objects.exists)()  # no failure counted


async def test_it_is_unavailable_without_any_key(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    await add_key("off", PRIMARY_KEY, status=CredentialStatus.DISABLED)

    with pytest.raises(ClaudeUnavailable):
        await client.create(HELLO)

    assert fake_claude.requests == []


async def test_it_falls_back_to_the_env_key_when_no_stored_key_is_usable(
    fake_claude: FakeClaude, sleeps: RecordedSleeps
) -> None:
    await add_key("off", SECONDARY_KEY, status=CredentialStatus.DISABLED)

    with override_settings(ANTHROPIC_API_KEY=PRIMARY_KEY, ANTHROPIC_BASE_URL=fake_claude.base_url):
        claude = ClaudeClient(sleep=sleeps)
        try:
            reply = await claude.create(HELLO)
        finally:
            await claude.aclose()

    assert reply.credential_label == "ANTHROPIC_API_KEY"
    assert [request.api_key for request in fake_claude.requests] == [PRIMARY_KEY]
    [call] = await stored_calls()
    assert (call.credential_id, call.credential_label) == (None, "ANTHROPIC_API_KEY")


async def test_a_rate_limited_env_key_is_waited_for_in_line(
    fake_claude: FakeClaude, sleeps: RecordedSleeps
) -> None:
    fake_claude.set_scenario(RATE_LIMITED, times=1)

    with override_settings(ANTHROPIC_API_KEY=PRIMARY_KEY, ANTHROPIC_BASE_URL=fake_claude.base_url):
        claude = ClaudeClient(sleep=sleeps)
        try:
            reply = await claude.create(HELLO)
        finally:
            await claude.aclose()

    assert reply.text == ECHO
    assert sleeps.durations == [pytest.approx(1, abs=0.5)]
    [event] = await events("credential.cooling")
    assert event.data["label"] == "ANTHROPIC_API_KEY"


async def test_a_refused_env_key_is_set_aside_and_reported(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    with override_settings(ANTHROPIC_API_KEY="sk-ant-env-unknown"):
        with pytest.raises(ClaudeUnavailable):
            await client.create(HELLO)
        with pytest.raises(ClaudeUnavailable):
            await client.create(HELLO)

    assert len(fake_claude.requests) == 1
    [event] = await events("credential.invalid")
    assert (event.level, event.data["label"]) == ("error", "ANTHROPIC_API_KEY")


# -- retries ----------------------------------------------------------------------------------


def test_the_backoff_doubles_up_to_its_cap_and_a_retry_after_wins() -> None:
    def top(low: float, high: float) -> float:
        return high

    delays = [retry_delay(n, base=0.5, cap=4.0, jitter=top) for n in range(1, 7)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert 0 <= retry_delay(3, base=0.5, cap=4.0) <= 2.0  # full jitter: anywhere up to the top
    assert retry_delay(1, base=0.5, cap=4.0, retry_after=2.5) == 2.5
    assert retry_delay(1, base=0.5, cap=4.0, retry_after=60) == 4.0


async def test_it_retries_server_errors_with_exponential_backoff_up_to_max_attempts(
    fake_claude: FakeClaude,
    client: ClaudeClient,
    sleeps: RecordedSleeps,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "MAX_ATTEMPTS": 5}
    monkeypatch.setattr(
        "pipeline.claude.client.random.uniform", lambda low, high: high
    )  # top of jitter
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(SERVER_ERROR)

    with pytest.raises(IntegrationError) as caught:
        await client.create(HELLO)

    assert type(caught.value) is IntegrationError
    assert caught.value.permanent is False
    assert "500 api_error" in caught.value.details
    assert sleeps.durations == [1.0, 2.0, 3.0, 3.0]  # base 1 s, doubling, capped at 3 s
    assert len(fake_claude.requests) == 5
    assert [(call.ok, call.status_code) for call in await stored_calls()] == [(False, 500)] * 5


async def test_it_retries_an_overloaded_api_and_then_answers(
    fake_claude: FakeClaude, client: ClaudeClient, sleeps: RecordedSleeps
) -> None:
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(OVERLOADED, times=2)

    reply = await client.create(HELLO)

    assert reply.text == ECHO
    assert len(sleeps.durations) == 2
    assert 0 <= sleeps.durations[0] <= 1.0
    assert 0 <= sleeps.durations[1] <= 2.0
    assert [call.status_code for call in await stored_calls()] == [529, 529, 200]


@pytest.mark.parametrize("scenario", BROKEN_STREAMS, ids=lambda scenario: scenario.name)
async def test_a_broken_stream_is_retried_and_the_text_starts_again(
    fake_claude: FakeClaude, client: ClaudeClient, scenario: Scenario
) -> None:
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(scenario, times=1)
    seen = TextSeen()

    reply = await client.create(HELLO, on_text=seen)

    assert reply.text == ECHO
    assert seen.texts[-1] == ECHO
    assert restarts(seen.texts) == 1
    assert [call.ok for call in await stored_calls()] == [False, True]


@pytest.mark.parametrize("scenario", BROKEN_STREAMS, ids=lambda scenario: scenario.name)
async def test_a_stream_that_keeps_breaking_ends_in_an_integration_error(
    fake_claude: FakeClaude, client: ClaudeClient, scenario: Scenario
) -> None:
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(scenario)

    with pytest.raises(IntegrationError) as caught:
        await client.create(HELLO)

    assert type(caught.value) is IntegrationError
    assert caught.value.permanent is False
    assert len(fake_claude.requests) == 3


async def test_a_bad_request_is_permanent_and_not_retried(
    fake_claude: FakeClaude, client: ClaudeClient, sleeps: RecordedSleeps
) -> None:
    await add_key("main", PRIMARY_KEY)

    with pytest.raises(IntegrationError) as caught:
        await client.create(ClaudeRequest(model=MODEL, max_tokens=256, messages=()))

    assert caught.value.permanent is True
    assert "invalid_request_error" in caught.value.details
    assert len(fake_claude.requests) == 1
    assert sleeps.durations == []
    assert await state_of_breaker("anthropic") == "closed"


# -- the breaker ------------------------------------------------------------------------------


async def test_the_breaker_opens_after_repeated_failed_calls_and_then_refuses_without_a_request(
    fake_claude: FakeClaude, client: ClaudeClient, settings: Any
) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "MAX_ATTEMPTS": 2, "BREAKER_FAILURE_THRESHOLD": 2}
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(SERVER_ERROR)

    for _ in range(2):
        with pytest.raises(IntegrationError):
            await client.create(HELLO)
    with pytest.raises(ClaudeUnavailable):
        await client.create(HELLO)

    assert len(fake_claude.requests) == 4  # two calls of two attempts; none for the third
    assert await state_of_breaker("anthropic") == "open"
    assert len(await events("breaker.opened")) == 1


async def test_a_successful_call_resets_the_count_of_failed_calls(
    fake_claude: FakeClaude, client: ClaudeClient, settings: Any
) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "MAX_ATTEMPTS": 1}
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(SERVER_ERROR, times=1)
    with pytest.raises(IntegrationError):
        await client.create(HELLO)

    await client.create(HELLO)

    row = await sync_to_async(CircuitBreaker.objects.get)(service="anthropic")
    assert (row.state, row.consecutive_failures) == ("closed", 0)


async def test_while_the_probe_is_in_flight_other_calls_are_refused_and_its_success_closes(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    await add_key("main", PRIMARY_KEY)
    await open_breaker(until=timezone.now() - timedelta(seconds=1))
    fake_claude.set_scenario(Scenario(name="unhurried", time_to_first_token=0.3))

    probe = asyncio.create_task(client.create(HELLO))
    while not fake_claude.requests:
        await asyncio.sleep(0.01)
    with pytest.raises(ClaudeUnavailable):
        await client.create(HELLO)
    reply = await probe

    assert reply.text == ECHO
    assert len(fake_claude.requests) == 1
    assert await state_of_breaker("anthropic") == "closed"
    assert len(await events("breaker.closed")) == 1


async def test_a_failed_probe_opens_the_breaker_again(
    fake_claude: FakeClaude, client: ClaudeClient, settings: Any
) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "MAX_ATTEMPTS": 1}
    await add_key("main", PRIMARY_KEY)
    await open_breaker(until=timezone.now() - timedelta(seconds=1))
    fake_claude.set_scenario(OVERLOADED)

    with pytest.raises(IntegrationError):
        await client.create(HELLO)
    with pytest.raises(ClaudeUnavailable):
        await client.create(HELLO)

    assert len(fake_claude.requests) == 1
    assert await state_of_breaker("anthropic") == "open"


# -- cancellation and secrets -----------------------------------------------------------------


async def test_cancelling_a_call_logs_it_as_cancelled_and_propagates(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    await add_key("main", PRIMARY_KEY)
    fake_claude.set_scenario(SLOW)

    task = asyncio.create_task(client.create(HELLO))
    while not fake_claude.requests:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [call] = await stored_calls()
    assert (call.ok, call.error, call.credential_label) == (False, "cancelled", "main")
    assert await state_of_breaker("anthropic") == "closed"
    assert not await sync_to_async(CircuitBreaker.objects.exists)()


async def test_no_stored_row_ever_holds_a_key(
    fake_claude: FakeClaude, client: ClaudeClient
) -> None:
    leaked = "sk-ant-api03-LEAKED-by-the-server"
    await add_key("revoked", "sk-ant-revoked-LEAKCHECK", priority=0)
    await add_key("limited", PRIMARY_KEY, priority=1)
    await add_key("spare", SECONDARY_KEY, priority=2)
    fake_claude.set_scenario(RATE_LIMITED, api_key=PRIMARY_KEY, times=1)
    leaky = Scenario(name="leaky", failure=Failure.SERVER_ERROR, error_message=f"bad {leaked}")
    fake_claude.set_scenario(leaky, api_key=SECONDARY_KEY, times=1)

    reply = await client.create(HELLO)

    assert reply.credential_label == "spare"
    secrets = ["sk-ant-revoked-LEAKCHECK", PRIMARY_KEY, SECONDARY_KEY, leaked]
    stored = await sync_to_async(everything_stored)()
    assert [status for status, _ in stored["calls"]] == [401, 429, 500, 200]
    assert not [secret for secret in secrets if secret in json.dumps(stored, default=str)]
    assert "sk-ant-[redacted]" in json.dumps(stored["calls"])


def everything_stored() -> dict[str, list[Any]]:
    """Every column of every call, event and key-state field, as text."""
    calls = [
        (call.status_code, [str(getattr(call, f.attname)) for f in ExternalCall._meta.fields])
        for call in ExternalCall.objects.order_by("id")
    ]
    events = [[event.kind, event.summary, event.data] for event in Event.objects.all()]
    keys = list(ApiCredential.objects.values_list("label", "last_error"))
    return {"calls": calls, "events": events, "keys": keys}


# -- status -----------------------------------------------------------------------------------


def test_claude_status_counts_keys_by_state(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = "sk-ant-env"
    now = timezone.now()
    ApiCredentialFactory(label="active")
    ApiCredentialFactory(
        label="rested", status=CredentialStatus.COOLING_DOWN, cooldown_until=now - timedelta(1)
    )
    ApiCredentialFactory(
        label="cooling", status=CredentialStatus.COOLING_DOWN, cooldown_until=now + timedelta(1)
    )
    ApiCredentialFactory(label="invalid", status=CredentialStatus.INVALID)
    ApiCredentialFactory(label="disabled", status=CredentialStatus.DISABLED)

    status = claude_status()

    assert status.breaker_state == "closed"
    assert (status.usable_credentials, status.cooling_down, status.invalid) == (2, 1, 1)
    assert status.fallback_key_configured is True
    breaker_record_failure("anthropic", "boom", policy=BreakerPolicy(1, 30))
    assert claude_status().breaker_state == "open"
