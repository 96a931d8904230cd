"""Scheduling, listing and cancelling reminders, within the per-person limit."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from aisystem.models import Identity, Reminder, ReminderKind, ReminderStatus
from aisystem.services.reminders.times import (
    Recurrence,
    ReminderError,
    moment_text,
    person_time_zone,
    recurrence_next,
)

MAX_TEXT_CHARS = 2000


def reminders_limit() -> int:
    return int(settings.AISYSTEM_REMINDERS_PER_PERSON)


def reminder_create(
    *,
    identity_id: int,
    chat_id: int,
    text: str,
    now: datetime,
    due_at: datetime | None = None,
    recurrence: Recurrence | None = None,
) -> Reminder:
    """Schedule a one-off reminder at ``due_at`` or, with ``recurrence``, a recurring prompt
    (first due at its next occurrence). Raises ReminderError: no text, a time in the past,
    or the person already has the limit of active reminders. The identity row is locked
    while counting, so two requests at once cannot both take the last place."""
    text = text.strip()
    if not text:
        raise ReminderError("Say what to remind you of, e.g. `/remind in 10m stretch`.")
    if len(text) > MAX_TEXT_CHARS:
        raise ReminderError(f"That is too long for a reminder (at most {MAX_TEXT_CHARS} chars).")
    if recurrence is None and due_at is None:
        raise ReminderError("Say when, e.g. `/remind in 10m stretch`.")
    if recurrence is None and due_at is not None and due_at <= now:
        raise ReminderError("That time has already passed. Pick a time in the future.")
    with transaction.atomic():
        list(Identity.objects.select_for_update().filter(pk=identity_id).values_list("pk"))
        active = Reminder.objects.filter(identity_id=identity_id, status=ReminderStatus.ACTIVE)
        limit = reminders_limit()
        if active.count() >= limit:
            raise ReminderError(
                f"You already have {limit} active reminders, the most I keep per person. "
                "Cancel one first: send /reminders to see them, then `/reminders cancel N`."
            )
        if recurrence is not None:
            zone = person_time_zone(identity_id=identity_id)
            due_at = recurrence_next(recurrence, zone, after=now)
        assert due_at is not None
        return Reminder.objects.create(
            identity_id=identity_id,
            chat_id=chat_id,
            text=text,
            kind=ReminderKind.ONCE if recurrence is None else ReminderKind.PROMPT,
            recurrence=str(recurrence) if recurrence is not None else "",
            due_at=due_at,
            created_at=now,
        )


def reminders_active(*, identity_id: int) -> list[Reminder]:
    """The person's active reminders, soonest first: the numbering of /reminders."""
    return list(
        Reminder.objects.filter(identity_id=identity_id, status=ReminderStatus.ACTIVE).order_by(
            "due_at", "pk"
        )
    )


def reminder_cancel(*, identity_id: int, number: int) -> Reminder | None:
    """Cancel the person's ``number``-th active reminder (1-based, as /reminders lists them);
    None when there is no such number. Only their own reminders are counted."""
    mine = reminders_active(identity_id=identity_id)
    if not 1 <= number <= len(mine):
        return None
    chosen = mine[number - 1]
    Reminder.objects.filter(pk=chosen.pk, status=ReminderStatus.ACTIVE).update(
        status=ReminderStatus.CANCELLED, claimed_until=None
    )
    return chosen


def reminder_describe(reminder: Reminder, zone: ZoneInfo) -> str:
    """What was scheduled and when, in the person's zone; the commands and the tool say it."""
    if reminder.kind == ReminderKind.PROMPT:
        recurrence = Recurrence.parse(reminder.recurrence)
        return (
            f"{recurrence.describe()} ({zone.key}) I'll answer “{reminder.text}”; "
            f"next on {moment_text(reminder.due_at, zone)}"
        )
    return f"“{reminder.text}” on {moment_text(reminder.due_at, zone)}"
