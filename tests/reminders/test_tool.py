"""``schedule_reminder``: bound to the sender and chat of one message, offered to everyone,
and called by Claude (the fake Messages API) in the whole pipeline."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.models import (
    ChatType,
    Identity,
    PersonSettings,
    Reminder,
    ReminderKind,
    Transport,
)
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import FakeClaude, Scenario, ToolUseReply
from pipeline.processor import UnifiedMessageProcessor
from pipeline.tools import tools_for
from pipeline.types import InboundMessage, ToolUseBlock
from tests.conftest import PRIMARY_KEY
from tests.fakes.transport import RecordingTransport
from tests.pipeline.builders import context
from tests.reminders.conftest import person

_ids = itertools.count(1)


def use(**arguments: Any) -> ToolUseBlock:
    return ToolUseBlock(id=f"toolu_{next(_ids)}", name="schedule_reminder", input=arguments)


def tomorrow_at_nine() -> datetime:
    day = (timezone.now() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 9, 0)


@pytest.mark.django_db(transaction=True)
async def test_the_tool_schedules_for_the_sender_in_their_zone_and_says_what() -> None:
    ann, chat = await sync_to_async(person)()
    await PersonSettings.objects.acreate(identity=ann, time_zone="Europe/Berlin")
    registry = await sync_to_async(tools_for)(context(identity_id=ann.pk, chat_pk=chat.pk))
    when = tomorrow_at_nine()

    result, record = await registry.call(use(when=when.isoformat(), text="call Bob"))

    assert record.ok and not result.is_error
    reminder = await Reminder.objects.aget()
    assert (reminder.identity_id, reminder.chat_id, reminder.text) == (ann.pk, chat.pk, "call Bob")
    shown = f"{when:%a} {when.day} {when:%b %Y}, 09:00 (Europe/Berlin)"
    assert f"“call Bob” on {shown}" in result.content
    assert "/reminders cancel N" in result.content


@pytest.mark.django_db(transaction=True)
async def test_an_offset_is_honoured_and_shown_in_the_persons_zone() -> None:
    ann, chat = await sync_to_async(person)()
    await PersonSettings.objects.acreate(identity=ann, time_zone="Europe/Berlin")
    registry = await sync_to_async(tools_for)(context(identity_id=ann.pk, chat_pk=chat.pk))
    when = tomorrow_at_nine()

    result, _ = await registry.call(use(when=f"{when.isoformat()}-05:00", text="call Bob"))

    assert "15:00 (Europe/Berlin)" in result.content  # 09:00 in New York


@pytest.mark.django_db(transaction=True)
async def test_the_tool_can_schedule_a_recurring_prompt() -> None:
    ann, chat = await sync_to_async(person)()
    registry = await sync_to_async(tools_for)(context(identity_id=ann.pk, chat_pk=chat.pk))

    result, _ = await registry.call(use(every="weekday 08:00", text="my briefing"))

    reminder = await Reminder.objects.aget()
    assert reminder.kind == ReminderKind.PROMPT and reminder.recurrence == "weekday 08:00"
    assert "every weekday (Mon to Fri) at 08:00 (UTC)" in result.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"when": "2020-01-01T09:00:00+00:00", "text": "too late"}, "already passed"),
        ({"when": "next tuesday", "text": "x"}, "not an ISO 8601 date-time"),
        ({"text": "when?"}, "Give `when`"),
        ({"when": "2099-01-01T09:00", "text": " "}, "Say what to remind you of"),
    ],
)
async def test_bad_input_goes_back_to_claude_as_an_error(
    arguments: dict[str, str], says: str
) -> None:
    ann, chat = await sync_to_async(person)()
    registry = await sync_to_async(tools_for)(context(identity_id=ann.pk, chat_pk=chat.pk))

    result, record = await registry.call(use(**arguments))

    assert result.is_error and not record.ok and says in result.content
    assert not await Reminder.objects.aexists()


@pytest.mark.django_db(transaction=True)
async def test_remind_me_tomorrow_at_nine_through_the_pipeline(fake_claude: FakeClaude) -> None:
    when = tomorrow_at_nine()
    fake_claude.set_scenario(
        Scenario(
            name="schedules",
            tool_use=ToolUseReply(
                name="schedule_reminder", input={"when": when.isoformat(), "text": "call Bob"}
            ),
        ),
        times=1,
    )
    await sync_to_async(person)()  # the allow-everyone rule
    client = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    processor = UnifiedMessageProcessor(client=client)
    message = InboundMessage(
        transport="telegram",
        chat_id="555",
        chat_type=ChatType.PRIVATE,
        message_id="1",
        sender_id="4242",
        sent_at=timezone.now(),
        text="remind me tomorrow at 9 to call Bob",
    )
    try:
        result = await processor.process_message(message, RecordingTransport())
    finally:
        await client.aclose()

    assert result.status == "answered"
    sender = await Identity.objects.aget(transport=Transport.TELEGRAM, external_id="4242")
    reminder = await Reminder.objects.select_related("chat").aget()
    assert reminder.identity_id == sender.pk and reminder.chat.external_id == "555"
    assert reminder.text == "call Bob"
    body = fake_claude.requests[-1].body or {}
    tool_result = next(
        block for block in body["messages"][-1]["content"] if block["type"] == "tool_result"
    )
    assert "Scheduled (reminder #" in str(tool_result["content"])
    assert "“call Bob” on" in str(tool_result["content"])
