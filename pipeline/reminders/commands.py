"""``/remind``, ``/reminders`` and ``/timezone``: the replies, over the reminder services.

Each takes the clock as ``now`` so tests can run them at any moment; the command executor
passes the real one. Every answer repeats what was scheduled and when, in the person's
time zone, so a misread time is noticed at once rather than when the reminder is due.
"""

from __future__ import annotations

from datetime import datetime

from aisystem.models import ReminderKind
from aisystem.services.reminders import (
    Recurrence,
    ReminderError,
    moment_text,
    person_time_zone,
    person_time_zone_set,
    reminder_cancel,
    reminder_create,
    reminder_describe,
    reminders_active,
)
from pipeline.reminders.parsing import remind_parse, usage

NO_REMINDERS = "You have no reminders. Set one with `/remind in 10m stretch`."


def remind_command(*, args: str, identity_id: int, chat_pk: int, now: datetime) -> str:
    """``/remind in|at|every …``: schedule it in this chat, or say what would work."""
    zone = person_time_zone(identity_id=identity_id)
    if not args.strip():
        return f"When should I remind you, and of what?\n\n{usage(now, zone)}"
    try:
        request = remind_parse(args, now=now, zone=zone)
        reminder = reminder_create(
            identity_id=identity_id,
            chat_id=chat_pk,
            text=request.text,
            due_at=request.due_at,
            recurrence=request.recurrence,
            now=now,
        )
    except ReminderError as error:
        return str(error)
    if reminder.kind == ReminderKind.PROMPT:
        return f"🔁 Scheduled: {reminder_describe(reminder, zone)}."
    return f"⏰ Okay, I'll remind you {reminder_describe(reminder, zone)}."


def reminders_command(*, args: str, identity_id: int) -> str:
    """``/reminders`` (the numbered list) or ``/reminders cancel N``."""
    words = args.split()
    if words and words[0].lower() in ("cancel", "delete", "remove"):
        return _cancel(words[1:], identity_id)
    if words:
        return "Send /reminders for the list, or `/reminders cancel N` to cancel one."
    mine = reminders_active(identity_id=identity_id)
    if not mine:
        return NO_REMINDERS
    zone = person_time_zone(identity_id=identity_id)
    lines = [f"Your reminders (times in {zone.key}):"]
    for number, reminder in enumerate(mine, start=1):
        when = moment_text(reminder.due_at, zone).removesuffix(f" ({zone.key})")
        if reminder.kind == ReminderKind.PROMPT:
            every = Recurrence.parse(reminder.recurrence).describe()
            lines.append(f"{number}. {every}: “{reminder.text}” (next {when})")
        else:
            lines.append(f"{number}. {when}: “{reminder.text}”")
    lines += ["", "Cancel one with `/reminders cancel N`."]
    return "\n".join(lines)


def _cancel(words: list[str], identity_id: int) -> str:
    if not words or not words[0].lstrip("#").isdigit():
        return "Say which one by its number in /reminders, e.g. `/reminders cancel 1`."
    number = int(words[0].lstrip("#"))
    cancelled = reminder_cancel(identity_id=identity_id, number=number)
    if cancelled is None:
        count = len(reminders_active(identity_id=identity_id))
        have = f"you have {count}" if count else "you have none"
        return f"There is no reminder {number}: {have}. Send /reminders to see them."
    return f"Cancelled reminder {number}: “{cancelled.text}”."


def timezone_command(*, args: str, identity_id: int, now: datetime) -> str:
    """``/timezone`` shows the person's zone; ``/timezone Area/City`` sets it."""
    name = args.strip()
    if not name:
        zone = person_time_zone(identity_id=identity_id)
        return (
            f"Your time zone is {zone.key} (it's {now.astimezone(zone):%H:%M} there now). "
            "Change it with `/timezone Area/City`, e.g. `/timezone Europe/Berlin`."
        )
    try:
        zone = person_time_zone_set(identity_id=identity_id, name=name.split()[0], now=now)
    except ReminderError as error:
        return str(error)
    return (
        f"Your time zone is now {zone.key} (it's {now.astimezone(zone):%H:%M} there). "
        "I read the times you give me in it; your recurring prompts keep their time of day."
    )
