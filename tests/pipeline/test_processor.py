"""The whole pipeline, end to end: real database, the real anthropic SDK against the fake
Messages API on loopback, and a transport that records what the user would see."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.cache import cache
from django.utils import timezone

from aisystem.models import (
    AccessAction,
    AccessRule,
    Chat,
    ChatType,
    Conversation,
    Direction,
    Event,
    ExternalCall,
    Identity,
    Message,
    MessageStatus,
    OutboxItem,
    RateLimitPolicy,
    ReplyMode,
    Role,
    Workspace,
)
from pipeline.claude.client import ClaudeClient
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import (
    SERVER_ERROR,
    SLOW,
    TOOL_USE,
    UNAUTHORIZED,
    FakeClaude,
    Scenario,
)
from pipeline.outcomes import messages_interrupted, messages_mark_interrupted
from pipeline.processor import UnifiedMessageProcessor
from pipeline.replies import DEFERRED_REPLY
from pipeline.security_gate import NOT_AVAILABLE, OUT_OF_BUDGET
from pipeline.tools import Tool, ToolRegistry
from pipeline.types import Attachment, InboundMessage, ReplyReference, ToolSpec
from tests.fakes.transport import RecordingTransport
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

_ids = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _no_sleep(seconds: float) -> None:
    return None


def make_processor(fake: FakeClaude, tools: ToolRegistry | None = None) -> UnifiedMessageProcessor:
    client = ClaudeClient(base_url=fake.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep)
    return UnifiedMessageProcessor(client=client, tools=tools)


@pytest.fixture
def processor(fake_claude: FakeClaude) -> UnifiedMessageProcessor:
    return make_processor(fake_claude)


@pytest.fixture
def allow_everyone() -> Iterator[AccessRule]:
    yield AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)


def message(text: str = "hello there", **overrides: Any) -> InboundMessage:
    fields: dict[str, Any] = {
        "transport": "telegram",
        "chat_id": "42",
        "chat_type": ChatType.PRIVATE,
        "message_id": str(next(_ids)),
        "sender_id": "7",
        "sender_username": "ada",
        "sender_name": "Ada Lovelace",
        "sent_at": timezone.now(),
        "text": text,
        "assistant_username": "helperbot",
    }
    fields.update(overrides)
    return InboundMessage(**fields)


def last_request_body(fake: FakeClaude) -> dict[str, Any]:
    request = fake.requests[-1]
    return request.body if isinstance(request.body, dict) else json.loads(request.body)


def user_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for turn in body["messages"]:
        content = turn["content"]
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [block.get("text", "") for block in content if block.get("type") == "text"]
    return texts


async def test_a_text_message_is_answered_and_recorded(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    transport = RecordingTransport()

    result = await processor.process_message(message("What is 2+2?"), transport)

    assert result.status == "answered"
    assert "What is 2+2?" in result.reply
    assert transport.texts == [result.reply]
    assert {"gate", "context", "route", "agent", "delivery", "total"} <= set(result.timings_ms)
    inbound = await Message.objects.aget(pk=result.message_id)
    assert inbound.status == MessageStatus.ANSWERED
    reply = await Message.objects.aget(reply_to=inbound, direction=Direction.OUTBOUND)
    assert reply.input_tokens > 0 and reply.output_tokens > 0
    assert reply.cost_usd > 0
    assert reply.latency_ms is not None
    assert transport.reactions[0][1] == "👀" and transport.reactions[-1][1] == "👍"
    kinds = [
        kind async for kind in Event.objects.filter(message=inbound).values_list("kind", flat=True)
    ]
    assert {
        "message.received",
        "gate.allowed",
        "context.built",
        "route.planned",
        "agent.ok",
    } <= set(kinds)
    assert "message.answered" in kinds


async def test_nobody_is_answered_without_an_allow_rule(processor: UnifiedMessageProcessor) -> None:
    transport = RecordingTransport()

    first = await processor.process_message(message("hi"), transport)
    second = await processor.process_message(message("hello?"), transport)

    assert first.status == second.status == "rejected"
    assert first.reason == "no_matching_rule"
    assert transport.texts == [NOT_AVAILABLE]  # one notice per window, no spam
    statuses = [s async for s in Message.objects.values_list("status", flat=True)]
    assert statuses == [MessageStatus.REJECTED, MessageStatus.REJECTED]


async def test_a_blocked_identity_gets_silence(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    await Identity.objects.acreate(transport="telegram", external_id="7", is_blocked=True)
    transport = RecordingTransport()

    result = await processor.process_message(message("hi"), transport)

    assert (result.status, result.reason) == ("rejected", "blocked")
    assert transport.sent == []


async def test_duplicates_own_and_stale_messages_are_ignored(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    transport = RecordingTransport()
    original = message("once")
    await processor.process_message(original, transport)

    again = await processor.process_message(original, transport)
    own = await processor.process_message(message("me", is_own=True), transport)
    stale = await processor.process_message(
        message("old", sent_at=timezone.now() - timedelta(minutes=10)), transport
    )

    assert [again.reason, own.reason, stale.reason] == ["duplicate", "own_message", "stale"]
    assert {again.status, own.status, stale.status} == {"ignored"}
    assert len(fake_claude.requests) == 1
    assert len(transport.sent) == 1


async def test_a_stale_message_is_answered_during_catch_up(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    old = message("sent while offline", sent_at=timezone.now() - timedelta(minutes=30))

    result = await processor.process_message(
        InboundMessage(**{**old.__dict__, "is_catch_up": True}), RecordingTransport()
    )

    assert result.status == "answered"


async def test_the_rate_limit_rejects_with_one_notice(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    await RateLimitPolicy.objects.acreate(
        name="guests", role=Role.GUEST, messages_per_window=2, window_seconds=3600
    )
    transport = RecordingTransport()

    results = [await processor.process_message(message(f"m{i}"), transport) for i in range(4)]

    assert [r.status for r in results] == ["answered", "answered", "rejected", "rejected"]
    assert results[2].reason == "rate_limited"
    notices = [text for text in transport.texts if "faster than I can answer" in text]
    assert len(notices) == 1


async def test_a_chat_policy_limits_everyone_in_the_chat(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    chat = await Chat.objects.acreate(
        transport="telegram", external_id="-100", chat_type=ChatType.GROUP, reply_mode=ReplyMode.ALL
    )
    await RateLimitPolicy.objects.acreate(
        name="busy group", chat=chat, messages_per_window=1, window_seconds=3600
    )
    group = {"chat_id": "-100", "chat_type": ChatType.GROUP}

    first = await processor.process_message(
        message("a", sender_id="1", **group), RecordingTransport()
    )
    second = await processor.process_message(
        message("b", sender_id="2", **group), RecordingTransport()
    )

    assert first.status == "answered"
    assert (second.status, second.reason) == ("rejected", "chat_rate_limited")


async def test_the_daily_token_budget_stops_further_messages(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    identity = await Identity.objects.acreate(
        transport="telegram", external_id="7", role=Role.MEMBER
    )
    await RateLimitPolicy.objects.acreate(name="ada", identity=identity, daily_token_budget=10)
    transport = RecordingTransport()

    first = await processor.process_message(
        message("a question long enough to use tokens"), transport
    )
    second = await processor.process_message(message("another"), transport)

    assert first.status == "answered" and first.input_tokens + first.output_tokens >= 10
    assert (second.status, second.reason) == ("rejected", "token_budget_exceeded")
    assert transport.texts[-1] == OUT_OF_BUDGET


async def test_the_daily_cost_budget_is_computed_from_reported_usage(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    identity = await Identity.objects.acreate(
        transport="telegram", external_id="7", role=Role.MEMBER
    )
    await RateLimitPolicy.objects.acreate(
        name="ada", identity=identity, daily_cost_budget=Decimal("0.0001")
    )

    first = await processor.process_message(message("tell me " * 40), RecordingTransport())
    second = await processor.process_message(message("again"), RecordingTransport())

    assert first.status == "answered" and first.cost_usd >= Decimal("0.0001")
    assert (second.status, second.reason) == ("rejected", "cost_budget_exceeded")


async def test_history_is_sent_and_new_starts_afresh(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    transport = RecordingTransport()
    await processor.process_message(message("my name is Ada"), transport)
    await processor.process_message(message("what is my name?"), transport)
    with_history = user_texts(last_request_body(fake_claude))

    new = await processor.process_message(message("/new"), transport)
    await processor.process_message(message("who am I?"), transport)
    fresh = user_texts(last_request_body(fake_claude))

    assert any("my name is Ada" in text for text in with_history)
    assert new.status == "answered" and "new conversation" in new.reply
    assert not any("my name is Ada" in text for text in fresh)
    assert not any("/new" in text for text in fresh)
    assert await Conversation.objects.filter(ended_at__isnull=False).acount() == 1


async def test_workspace_command_switches_the_system_prompt(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    await Workspace.objects.acreate(
        slug="pirate", name="Pirate", system_prompt="Talk like a pirate."
    )
    transport = RecordingTransport()

    switched = await processor.process_message(message("/workspace pirate"), transport)
    await processor.process_message(message("hello"), transport)

    assert "Pirate" in switched.reply
    system = last_request_body(fake_claude)["system"]
    system_text = system if isinstance(system, str) else " ".join(b["text"] for b in system)
    assert "Talk like a pirate." in system_text


async def test_a_group_answers_only_when_mentioned(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    group = {"chat_id": "-200", "chat_type": ChatType.SUPERGROUP}
    transport = RecordingTransport()

    chatter = await processor.process_message(message("just chatting", **group), transport)
    asked = await processor.process_message(
        message("@helperbot what time is it?", mentions_assistant=True, **group), transport
    )

    assert (chatter.status, chatter.reason) == ("ignored", "not_addressed")
    assert asked.status == "answered"
    sent = user_texts(last_request_body(fake_claude))[-1]
    assert "@helperbot" not in sent and "what time is it?" in sent
    assert len(transport.sent) == 1


async def test_a_reply_to_the_assistant_in_a_group_is_answered_with_its_context(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    reply_to = ReplyReference(
        transport_message_id="9", text="Paris is the capital.", from_assistant=True
    )

    result = await processor.process_message(
        message("and of Italy?", chat_id="-300", chat_type=ChatType.GROUP, reply_to=reply_to),
        RecordingTransport(),
    )

    assert result.status == "answered"
    assert "Paris is the capital." in user_texts(last_request_body(fake_claude))[-1]


async def test_a_voice_note_gets_a_clear_unsupported_answer(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    voice = Attachment(kind="voice", mime_type="audio/ogg", duration_seconds=4.0, size=9000)
    transport = RecordingTransport()

    result = await processor.process_message(message("", attachments=(voice,)), transport)

    assert result.status == "answered"
    assert "voice" in transport.texts[0].lower()
    assert fake_claude.requests == []


async def test_a_photo_goes_to_claude_as_an_image_block(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    photo = Attachment(kind="photo", mime_type="image/png", data=PNG, size=len(PNG))

    result = await processor.process_message(
        message("what is this?", attachments=(photo,)), RecordingTransport()
    )

    assert result.status == "answered"
    content = last_request_body(fake_claude)["messages"][-1]["content"]
    image = next(block for block in content if block["type"] == "image")
    assert image["source"]["media_type"] == "image/png"


async def test_claude_unavailable_defers_the_message_and_tells_the_user(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(UNAUTHORIZED)
    transport = RecordingTransport()

    result = await processor.process_message(message("are you there?"), transport)

    assert result.status == "deferred"
    assert transport.texts == [DEFERRED_REPLY]
    inbound = await Message.objects.aget(pk=result.message_id)
    assert inbound.status == MessageStatus.DEFERRED


async def test_a_persistent_server_error_defers_the_message_and_tells_the_user(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(SERVER_ERROR)
    transport = RecordingTransport()

    result = await processor.process_message(message("hello"), transport)

    assert result.status == "deferred"
    assert transport.texts == [DEFERRED_REPLY]
    assert transport.reactions[-1][1] == "❌"
    assert await ExternalCall.objects.filter(ok=False).acount() >= 2  # retried, each call logged


async def test_streaming_shows_the_reply_growing(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(
        Scenario(
            name="chatty",
            reply_text="one two three four five six seven eight",
            tokens_per_second=200,
        )
    )
    transport = RecordingTransport(streams=True)

    result = await processor.process_message(message("count"), transport)

    assert result.status == "answered"
    assert len(transport.sent) == 1
    assert transport.sent[0].edits, "the placeholder should have been edited as text arrived"
    assert transport.texts == ["one two three four five six seven eight"]


async def test_a_long_reply_is_split_for_telegram(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    await Workspace.objects.acreate(slug="long", name="Long", is_default=True, max_tokens=8000)
    paragraphs = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(12))
    fake_claude.set_scenario(Scenario(name="long", reply_text=paragraphs))
    transport = RecordingTransport()

    result = await processor.process_message(message("write a lot"), transport)

    assert result.status == "answered"
    assert len(transport.sent) >= 2
    assert all(len(text) <= 4096 for text in transport.texts)
    assert transport.sent[0].reply_to is not None and transport.sent[1].reply_to is None


async def test_refused_formatting_falls_back_to_plain_text(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(Scenario(name="bold", reply_text="This is **important**."))
    transport = RecordingTransport(reject_html=True)

    result = await processor.process_message(message("tell me"), transport)

    assert result.status == "answered"
    assert transport.texts == ["This is important."]


async def test_the_tool_use_loop_runs_the_tool_and_answers(
    allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    calls: list[dict[str, object]] = []

    async def weather(arguments: Any) -> str:
        calls.append(dict(arguments))
        return "18°C and sunny"

    tools = ToolRegistry(
        [Tool(ToolSpec("get_weather", "The weather in a city.", {"type": "object"}), weather)]
    )
    processor = make_processor(fake_claude, tools=tools)
    fake_claude.set_scenario(TOOL_USE, times=1)

    result = await processor.process_message(message("weather in Paris?"), RecordingTransport())

    assert result.status == "answered"
    assert calls == [{"city": "Paris", "unit": "celsius"}]
    last = last_request_body(fake_claude)["messages"]
    tool_result = next(b for b in last[-1]["content"] if b["type"] == "tool_result")
    assert tool_result["content"] == "18°C and sunny"
    assert len(fake_claude.requests) == 2


async def test_cancel_stops_the_answer_in_flight(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(SLOW)
    transport = RecordingTransport()
    slow = asyncio.create_task(processor.process_message(message("take your time"), transport))
    for _ in range(200):
        if fake_claude.requests:
            break
        await asyncio.sleep(0.01)

    cancel = await processor.process_message(message("/cancel"), RecordingTransport())
    stopped = await asyncio.wait_for(slow, timeout=10)

    assert cancel.reply == "Stopped."
    assert (stopped.status, stopped.reason) == ("answered", "cancelled")
    assert "Stopped" in transport.texts[-1] or "stopped" in transport.texts[-1]


async def test_an_unknown_command_points_to_help(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    result = await processor.process_message(message("/frobnicate"), RecordingTransport())

    assert "/help" in result.reply


async def test_help_whoami_usage_and_status_answer_without_claude(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    replies = {
        command: (
            await processor.process_message(message(f"/{command}"), RecordingTransport())
        ).reply
        for command in ("help", "whoami", "usage", "status", "start")
    }

    assert "/workspace" in replies["help"]
    assert "@ada" in replies["whoami"]
    assert "tokens" in replies["usage"]
    assert "Workspace" in replies["status"]
    assert fake_claude.requests == []


async def test_an_overlong_message_is_refused_with_a_clear_answer(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    transport = RecordingTransport()

    result = await processor.process_message(message("x" * 40000), transport)

    assert (result.status, result.reason) == ("rejected", "input_too_long")
    assert "too long" in transport.texts[0]


async def test_no_secret_reaches_an_event(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    await processor.process_message(message("hello"), RecordingTransport())

    dumped = json.dumps([row async for row in Event.objects.values("summary", "data")], default=str)
    assert PRIMARY_KEY not in dumped
    assert await sync_to_async(Event.objects.count)() >= 5


@pytest.mark.django_db(transaction=True)
def test_a_deferred_message_is_answered_once_claude_is_back(
    fake_claude: FakeClaude, allow_everyone: AccessRule
) -> None:
    fake_claude.set_scenario(UNAUTHORIZED, times=1)
    first = async_to_sync(make_processor(fake_claude).process_message)(
        message("are you back?"), RecordingTransport()
    )
    client = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    assert first.status == "deferred"
    cache.clear()  # the fallback key's "invalid" mark: staff fixed the key

    answered = deferred_answer(client=client)
    again = deferred_answer(client=client)

    assert (answered, again) == (1, 0)
    inbound = Message.objects.get(pk=first.message_id)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.ANSWERED, "deferred")
    item = OutboxItem.objects.get()
    assert "are you back?" in item.text
    assert item.reply_to_transport_message_id == inbound.transport_message_id


@pytest.mark.django_db(transaction=True)
def test_deferred_messages_expire_after_a_day(fake_claude: FakeClaude) -> None:
    chat = Chat.objects.create(transport="telegram", external_id="1", chat_type=ChatType.PRIVATE)
    old = Message.objects.create(
        transport="telegram",
        chat=chat,
        transport_message_id="1",
        direction=Direction.INBOUND,
        status=MessageStatus.DEFERRED,
        text="hello",
        created_at=timezone.now() - timedelta(hours=25),
    )

    deferred_answer(
        client=ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    )

    old.refresh_from_db()
    assert (old.status, old.status_reason) == (MessageStatus.FAILED, "expired")
    assert fake_claude.requests == []


async def test_an_access_rule_change_applies_to_the_next_message(
    processor: UnifiedMessageProcessor,
) -> None:
    rule = await AccessRule.objects.acreate(action=AccessAction.ALLOW, match_everyone=True)
    allowed = await processor.process_message(message("first"), RecordingTransport())

    await rule.adelete()
    denied = await processor.process_message(message("second"), RecordingTransport())

    assert (allowed.status, denied.status) == ("answered", "rejected")


async def test_an_interrupted_message_is_resumed_once(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, fake_claude: FakeClaude
) -> None:
    interrupted = message("finish me")
    await processor.process_message(interrupted, RecordingTransport())
    # As if the bridge had stopped while answering: the stored message goes back to interrupted.
    await Message.objects.filter(direction=Direction.INBOUND).aupdate(
        status=MessageStatus.PROCESSING
    )
    marked = await sync_to_async(messages_mark_interrupted)(
        transport="telegram", keys=[("42", interrupted.message_id)]
    )
    pending = await sync_to_async(messages_interrupted)(transport="telegram")

    resumed = await processor.process_message(interrupted, RecordingTransport())
    again = await processor.process_message(interrupted, RecordingTransport())

    assert marked == 1 and pending == [("42", interrupted.message_id)]
    assert resumed.status == "answered"
    assert (again.status, again.reason) == ("ignored", "duplicate")
    assert len(fake_claude.requests) == 2


class _FloodedTransport(RecordingTransport):
    """Telegram-like: every send is refused with "wait 600 s"."""

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        error = RuntimeError("FLOOD_WAIT_600")
        error.seconds = 600  # type: ignore[attr-defined]
        raise error


async def test_a_reply_refused_with_a_long_wait_is_rescheduled_through_the_outbox(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    result = await processor.process_message(message("hello"), _FloodedTransport())

    item = await OutboxItem.objects.aget()
    assert (result.status, result.reason) == ("answered", "rescheduled")
    assert "hello" in item.text
    assert item.available_at > timezone.now() + timedelta(seconds=500)
    reply = await Message.objects.aget(direction=Direction.OUTBOUND)
    assert (reply.status, reply.status_reason) == (MessageStatus.PROCESSING, "queued")
