"""``schedule_reminder``: the agent's way to "remind me tomorrow at 9 to call Bob".

The tool is bound to one message's sender and chat (``reminder_tool(context)``), as a
provider's write is bound to its account: Claude names only the time and the text, never
whose reminder it is. Unlike a provider's write it acts at once, with no confirmation: it
only schedules a message to the person themselves, and ``/reminders cancel N`` undoes it.
Its result states what was scheduled and when, in the person's time zone, for Claude to
repeat, so a misread time shows in the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.services.reminders import (
    Recurrence,
    ReminderError,
    person_time_zone,
    reminder_create,
    reminder_describe,
)
from pipeline.tools.registry import Tool, ToolInputError
from pipeline.types import MessageContext, ToolSpec

SCHEDULE_REMINDER = ToolSpec(
    name="schedule_reminder",
    description=(
        "Schedule a reminder for the person, delivered in this chat. Give `when` as an ISO "
        "8601 date-time, e.g. 2026-12-05T09:00:00+01:00; without an offset it is read in the "
        "person's time zone (call get_current_time first if you need today's date). For a "
        "prompt you should answer again and again (a morning briefing), give `every` instead, "
        'e.g. "weekday 08:00", "day 07:30" or "monday 09:00". The result says what was '
        "scheduled and when: tell the person exactly that."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "What to remind them of, or the prompt."},
            "when": {"type": "string", "description": "ISO 8601 date-time of a one-off."},
            "every": {"type": "string", "description": "A recurrence: days and a 24-hour time."},
        },
        "required": ["text"],
    },
)


def reminder_schedule(
    *, identity_id: int, chat_pk: int, arguments: Mapping[str, object], now: datetime
) -> str:
    """Schedule what ``arguments`` say for this person in this chat; the sentence for Claude.
    Raises ToolInputError for an unreadable time, a time in the past or the limit reached."""
    text = str(arguments.get("text") or "").strip()
    when = str(arguments.get("when") or "").strip()
    every = str(arguments.get("every") or "").strip()
    zone = person_time_zone(identity_id=identity_id)
    try:
        if every:
            recurrence: Recurrence | None = Recurrence.parse(every.removeprefix("every "))
            due_at = None
        elif when:
            recurrence, due_at = None, _moment_parse(when, zone_key=zone.key)
            if due_at.tzinfo is None:
                due_at = due_at.replace(tzinfo=zone)
        else:
            raise ReminderError("Give `when` (an ISO date-time) or `every`.")
        reminder = reminder_create(
            identity_id=identity_id,
            chat_id=chat_pk,
            text=text,
            due_at=due_at,
            recurrence=recurrence,
            now=now,
        )
    except ReminderError as error:
        raise ToolInputError(str(error)) from None
    return (
        f"Scheduled (reminder #{reminder.pk}): {reminder_describe(reminder, zone)}. The person "
        "can list them with /reminders and cancel one with /reminders cancel N."
    )


def _moment_parse(text: str, *, zone_key: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ReminderError(
            f"`{text[:40]}` is not an ISO 8601 date-time; write e.g. 2026-12-05T09:00 "
            f"(read in {zone_key}) or 2026-12-05T09:00:00+01:00."
        ) from None


_schedule = sync_to_async(reminder_schedule)


def reminder_tool(context: MessageContext) -> Tool:
    """``schedule_reminder`` for the sender of ``context``, in its chat."""

    async def run(arguments: Mapping[str, object]) -> str:
        return await _schedule(
            identity_id=context.identity_id,
            chat_pk=context.chat_pk,
            arguments=arguments,
            now=timezone.now(),
        )

    return Tool(SCHEDULE_REMINDER, run)
