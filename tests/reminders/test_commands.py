"""/remind, /reminders and /timezone with the real database: what the person reads back,
what is stored, the limit, and time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aisystem.models import Chat, Identity, PersonSettings, Reminder, ReminderKind, ReminderStatus
from pipeline.command_executor import command_execute
from pipeline.commands import help_text
from pipeline.reminders.commands import remind_command, reminders_command, timezone_command
from tests.pipeline.builders import context
from tests.reminders.conftest import NOW, person

pytestmark = pytest.mark.django_db


def remind(identity: Identity, chat: Chat, args: str, now: datetime = NOW) -> str:
    return remind_command(args=args, identity_id=identity.pk, chat_pk=chat.pk, now=now)


def set_zone(identity: Identity, name: str) -> None:
    PersonSettings.objects.create(identity=identity, time_zone=name)


def test_remind_in_schedules_it_and_says_when_in_the_persons_zone() -> None:
    ann, chat = person()
    set_zone(ann, "Europe/Berlin")

    answer = remind(ann, chat, "in 10m stretch")

    reminder = Reminder.objects.get()
    assert (reminder.identity, reminder.chat, reminder.text) == (ann, chat, "stretch")
    assert reminder.due_at == NOW + timedelta(minutes=10)
    assert reminder.kind == ReminderKind.ONCE and reminder.status == ReminderStatus.ACTIVE
    assert answer == "⏰ Okay, I'll remind you “stretch” on Fri 4 Dec 2026, 10:10 (Europe/Berlin)."


def test_remind_at_without_a_zone_uses_the_installations(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    ann, chat = person()

    answer = remind(ann, chat, "at 2026-12-24 09:00 call Mum")

    assert Reminder.objects.get().due_at == datetime(2026, 12, 24, 14, 0, tzinfo=UTC)
    assert "Thu 24 Dec 2026, 09:00 (America/New_York)" in answer


def test_remind_every_schedules_a_recurring_prompt_from_its_next_occurrence() -> None:
    ann, chat = person()
    set_zone(ann, "Europe/Berlin")

    answer = remind(ann, chat, "every weekday 08:00 give me my morning briefing")

    prompt = Reminder.objects.get()
    assert prompt.kind == ReminderKind.PROMPT and prompt.recurrence == "weekday 08:00"
    assert prompt.due_at == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday, 08:00 CET
    assert answer == (
        "🔁 Scheduled: every weekday (Mon to Fri) at 08:00 (Europe/Berlin) I'll answer “give me "
        "my morning briefing”; next on Mon 7 Dec 2026, 08:00 (Europe/Berlin)."
    )


def test_a_time_that_has_passed_is_refused() -> None:
    ann, chat = person()

    answer = remind(ann, chat, "at 2026-01-01 09:00 too late")

    assert "already passed" in answer
    assert not Reminder.objects.exists()


def test_remind_alone_says_what_works() -> None:
    ann, chat = person()

    assert "/remind in 10m stretch" in remind(ann, chat, "")


def test_past_the_limit_the_person_is_told_how_to_make_room(settings: Any) -> None:
    settings.AISYSTEM_REMINDERS_PER_PERSON = 2
    ann, chat = person()
    bob, _ = person()
    remind(ann, chat, "in 1h one")
    remind(ann, chat, "in 2h two")
    remind(bob, chat, "in 1h bob's is not counted against ann")

    answer = remind(ann, chat, "in 3h three")

    assert "You already have 2 active reminders" in answer
    assert "/reminders cancel N" in answer
    assert Reminder.objects.filter(identity=ann).count() == 2
    Reminder.objects.filter(identity=ann, text="one").update(status=ReminderStatus.SENT)
    assert remind(ann, chat, "in 3h three").startswith("⏰ Okay")


def test_reminders_lists_them_numbered_soonest_first() -> None:
    ann, chat = person()
    set_zone(ann, "Europe/Berlin")
    remind(ann, chat, "in 2h later")
    remind(ann, chat, "in 1h sooner")
    remind(ann, chat, "every day 07:00 the news")

    listing = reminders_command(args="", identity_id=ann.pk)

    assert listing.splitlines() == [
        "Your reminders (times in Europe/Berlin):",
        "1. Fri 4 Dec 2026, 11:00: “sooner”",
        "2. Fri 4 Dec 2026, 12:00: “later”",
        "3. every day at 07:00: “the news” (next Sat 5 Dec 2026, 07:00)",
        "",
        "Cancel one with `/reminders cancel N`.",
    ]


def test_reminders_cancel_n_cancels_that_one_of_the_persons_own() -> None:
    ann, chat = person()
    bob, _ = person()
    remind(ann, chat, "in 1h first")
    remind(ann, chat, "in 2h second")
    remind(bob, chat, "in 1h bob's")

    answer = reminders_command(args="cancel 2", identity_id=ann.pk)

    assert answer == "Cancelled reminder 2: “second”."
    assert Reminder.objects.get(text="second").status == ReminderStatus.CANCELLED
    assert Reminder.objects.get(text="bob's").status == ReminderStatus.ACTIVE
    assert "There is no reminder 5: you have 1." in reminders_command(
        args="cancel 5", identity_id=ann.pk
    )
    assert "e.g. `/reminders cancel 1`" in reminders_command(args="cancel x", identity_id=ann.pk)


def test_no_reminders_says_how_to_set_one() -> None:
    ann, _ = person()

    assert "/remind in 10m" in reminders_command(args="", identity_id=ann.pk)


def test_timezone_shows_and_sets_the_zone() -> None:
    ann, _ = person()

    shown = timezone_command(args="", identity_id=ann.pk, now=NOW)
    changed = timezone_command(args="europe/berlin", identity_id=ann.pk, now=NOW)
    unknown = timezone_command(args="Mars/Olympus", identity_id=ann.pk, now=NOW)

    assert shown.startswith("Your time zone is UTC (it's 09:00 there now)")
    assert changed.startswith("Your time zone is now Europe/Berlin (it's 10:00 there)")
    assert "I don't know the time zone `Mars/Olympus`" in unknown
    assert "/timezone Europe/Berlin" in unknown
    assert PersonSettings.objects.get(identity=ann).time_zone == "Europe/Berlin"


def test_a_new_zone_keeps_a_recurring_prompts_time_of_day_and_a_one_offs_instant() -> None:
    ann, chat = person()
    remind(ann, chat, "every day 08:00 the news")  # 08:00 UTC
    remind(ann, chat, "in 1h once")

    timezone_command(args="Asia/Tokyo", identity_id=ann.pk, now=NOW)

    news, once = Reminder.objects.get(text="the news"), Reminder.objects.get(text="once")
    assert news.due_at == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo
    assert once.due_at == NOW + timedelta(hours=1)


def test_the_commands_run_through_the_executor_and_are_in_the_help() -> None:
    ann, chat = person()
    ctx = context(identity_id=ann.pk, chat_pk=chat.pk)

    scheduled = command_execute(name="remind", args="in 10m stretch", context=ctx).reply
    listed = command_execute(name="reminders", args="", context=ctx).reply
    zone = command_execute(name="timezone", args="", context=ctx).reply

    assert scheduled.startswith("⏰ Okay, I'll remind you “stretch”")
    assert "1." in listed and "stretch" in listed
    assert zone.startswith("Your time zone is UTC")
    text = help_text()
    assert "/remind in 10m | at YYYY-MM-DD HH:MM | every weekday HH:MM …" in text
    assert "/reminders [cancel N]" in text and "/timezone [Area/City]" in text
