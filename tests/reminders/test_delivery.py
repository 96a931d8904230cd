"""The minutely job with an advanced clock: one-offs, lateness, recurring prompts answered
through the fake Messages API, and each occurrence claimed once by concurrent workers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.utils import timezone

from aisystem.models import (
    Direction,
    Event,
    Identity,
    Message,
    MessageStatus,
    OutboxItem,
    PersonSettings,
    RateLimitPolicy,
    Reminder,
    ReminderStatus,
    Transport,
)
from aisystem.services.reminders import reminder_create
from pipeline.fakeclaude import OVERLOADED, FakeClaude, Scenario
from pipeline.reminders.commands import remind_command, reminders_command
from pipeline.reminders.delivery import reminders_deliver_due
from tests.reminders.conftest import NOW, person

pytestmark = pytest.mark.django_db


def schedule(identity: Identity, chat_pk: int, args: str) -> Reminder:
    remind_command(args=args, identity_id=identity.pk, chat_pk=chat_pk, now=NOW)
    return Reminder.objects.order_by("-pk").first()  # type: ignore[return-value]


def outbound(chat_pk: int) -> list[Message]:
    return list(Message.objects.filter(chat_id=chat_pk, direction=Direction.OUTBOUND))


def test_nothing_goes_out_before_it_is_due() -> None:
    ann, chat = person()
    schedule(ann, chat.pk, "in 10m stretch")

    assert reminders_deliver_due(now=NOW + timedelta(minutes=9)) == 0
    assert not OutboxItem.objects.exists() and not outbound(chat.pk)


def test_a_due_reminder_is_queued_for_telegram_stored_and_recorded_once() -> None:
    ann, chat = person()
    reminder = schedule(ann, chat.pk, "in 10m stretch")

    assert reminders_deliver_due(now=NOW + timedelta(minutes=10, seconds=30)) == 1
    assert reminders_deliver_due(now=NOW + timedelta(minutes=12)) == 0

    item = OutboxItem.objects.get()
    assert (item.transport, item.chat_id, item.text) == (
        "telegram",
        chat.pk,
        "⏰ Reminder: stretch",
    )
    [stored] = outbound(chat.pk)
    assert stored.text == "⏰ Reminder: stretch" and stored.identity == ann
    assert stored.transport_message_id == f"outbox-{item.pk}"
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SENT and reminder.claimed_until is None
    event = Event.objects.get(kind="reminder.sent")
    assert event.data == {"reminder_id": reminder.pk, "late_seconds": 30, "recurring": False}
    assert (event.chat_id, event.message_id) == (chat.pk, stored.pk)


def test_a_reminder_due_while_the_system_was_down_arrives_late_and_says_so() -> None:
    ann, chat = person()
    PersonSettings.objects.create(identity=ann, time_zone="Europe/Berlin")
    schedule(ann, chat.pk, "at 11:00 call Bob")  # 10:00 UTC

    reminders_deliver_due(now=datetime(2026, 12, 4, 13, 7, tzinfo=UTC))  # back at 14:07 there

    assert OutboxItem.objects.get().text == "⏰ Reminder: call Bob (due at 11:00, sent late)"
    late = Event.objects.get(kind="reminder.sent").data["late_seconds"]
    assert late == 3 * 3600 + 7 * 60


def test_a_day_late_reminder_names_the_day_it_was_due() -> None:
    ann, chat = person()
    schedule(ann, chat.pk, "at 2026-12-04 18:00 water the plants")

    reminders_deliver_due(now=datetime(2026, 12, 5, 8, 0, tzinfo=UTC))

    assert OutboxItem.objects.get().text.endswith("(due at 2026-12-04 18:00, sent late)")


def test_a_cancelled_reminder_is_not_sent() -> None:
    ann, chat = person()
    schedule(ann, chat.pk, "in 10m stretch")
    reminders_command(args="cancel 1", identity_id=ann.pk)

    assert reminders_deliver_due(now=NOW + timedelta(hours=1)) == 0
    assert not OutboxItem.objects.exists()


def test_a_blocked_persons_reminders_are_cancelled_not_sent() -> None:
    ann, chat = person()
    reminder = schedule(ann, chat.pk, "in 10m stretch")
    Identity.objects.filter(pk=ann.pk).update(is_blocked=True)

    assert reminders_deliver_due(now=NOW + timedelta(hours=1)) == 0
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED and not OutboxItem.objects.exists()


def test_a_browser_chat_reminder_waits_in_the_outbox_for_the_open_page() -> None:
    from aisystem.chat.services import web_outbox_take

    ann, chat = person(Transport.WEB)
    schedule(ann, chat.pk, "in 10m stretch")
    reminders_deliver_due(now=NOW + timedelta(minutes=10))

    # The page takes it on its own (real) clock: the item is available from when it was queued.
    taken = web_outbox_take(chat_external_id=chat.external_id, now=timezone.now())

    assert [reply.text for reply in taken] == ["⏰ Reminder: stretch"]
    assert outbound(chat.pk)[0].status == MessageStatus.DELIVERED


def test_a_rest_chat_reminder_is_stored_as_delivered_with_no_outbox_item() -> None:
    ann, chat = person(Transport.API)
    schedule(ann, chat.pk, "in 10m stretch")

    reminders_deliver_due(now=NOW + timedelta(minutes=10))

    [stored] = outbound(chat.pk)
    assert (stored.text, stored.status) == ("⏰ Reminder: stretch", MessageStatus.DELIVERED)
    assert not OutboxItem.objects.exists()


def test_a_claim_whose_worker_died_is_delivered_by_another_after_the_lease() -> None:
    from aisystem.services.reminders import LEASE, reminder_claim

    ann, chat = person()
    reminder = schedule(ann, chat.pk, "in 10m stretch")
    due = NOW + timedelta(minutes=10)
    assert reminder_claim(reminder_id=reminder.pk, now=due) is not None  # then it died

    assert reminders_deliver_due(now=due + timedelta(minutes=1)) == 0  # still leased
    assert reminders_deliver_due(now=due + LEASE + timedelta(seconds=1)) == 1
    assert OutboxItem.objects.count() == 1


# --- Recurring prompts ----------------------------------------------------------------------


def test_a_recurring_prompt_is_answered_by_claude_and_moves_to_its_next_occurrence(
    claude_is_the_fake: FakeClaude,
) -> None:
    claude_is_the_fake.set_scenario(Scenario(name="briefing", reply_text="Sunny; two meetings."))
    ann, chat = person()
    PersonSettings.objects.create(identity=ann, time_zone="Europe/Berlin")
    prompt = schedule(ann, chat.pk, "every weekday 08:00 give me my morning briefing")
    monday = datetime(2026, 12, 7, 7, 0, 20, tzinfo=UTC)

    assert reminders_deliver_due(now=monday) == 1

    sent = claude_is_the_fake.requests[-1].body or {}
    assert sent["messages"][-1]["content"][-1]["text"] == "give me my morning briefing"
    assert "schedule_reminder" in [tool["name"] for tool in sent.get("tools", [])]
    item = OutboxItem.objects.get()
    assert item.text == "Sunny; two meetings."
    asked = Message.objects.get(chat=chat, direction=Direction.INBOUND)
    assert (asked.text, asked.identity, asked.status) == (
        "give me my morning briefing",
        ann,
        MessageStatus.ANSWERED,
    )
    answer = Message.objects.get(chat=chat, direction=Direction.OUTBOUND)
    assert answer.text == "Sunny; two meetings." and answer.reply_to == asked
    prompt.refresh_from_db()
    assert prompt.status == ReminderStatus.ACTIVE
    assert prompt.due_at == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)  # Tuesday 08:00
    assert Event.objects.get(kind="reminder.sent").data["recurring"] is True
    assert Event.objects.filter(kind="message.answered", message_id=asked.pk).exists()
    assert reminders_deliver_due(now=monday + timedelta(minutes=1)) == 0


def test_a_prompt_missed_for_days_is_answered_once_late_then_on_schedule(
    claude_is_the_fake: FakeClaude,
) -> None:
    claude_is_the_fake.set_scenario(Scenario(name="news", reply_text="The news."))
    ann, chat = person()
    prompt = schedule(ann, chat.pk, "every day 07:00 the news")  # first due 5 Dec 07:00 UTC
    back = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)

    assert reminders_deliver_due(now=back) == 1

    assert OutboxItem.objects.get().text == "(due at 2026-12-05 07:00, sent late)\n\nThe news."
    prompt.refresh_from_db()
    assert prompt.due_at == datetime(2026, 12, 9, 7, 0, tzinfo=UTC)


def test_while_claude_is_unavailable_the_prompt_stays_due_and_leaves_nothing_behind(
    claude_is_the_fake: FakeClaude,
) -> None:
    claude_is_the_fake.set_scenario(OVERLOADED)
    ann, chat = person()
    prompt = schedule(ann, chat.pk, "every day 07:00 the news")
    due = prompt.due_at

    assert reminders_deliver_due(now=due + timedelta(seconds=5)) == 0

    prompt.refresh_from_db()
    assert (prompt.due_at, prompt.claimed_until) == (due, None)
    assert not Message.objects.exists() and not OutboxItem.objects.exists()

    claude_is_the_fake.reset()  # back: the next run answers it, late
    assert reminders_deliver_due(now=due + timedelta(minutes=10)) == 1
    assert OutboxItem.objects.get().text.startswith("(due at 07:00, sent late)")


# --- Several workers ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_deliver_each_reminder_once() -> None:
    ann, chat = person()
    for n in range(5):
        reminder_create(
            identity_id=ann.pk, chat_id=chat.pk, text=f"r{n}", due_at=NOW + timedelta(1), now=NOW
        )
    start = threading.Barrier(4)
    delivered: list[int] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            delivered.append(reminders_deliver_due(now=NOW + timedelta(days=1)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(delivered) == 5
    texts = sorted(OutboxItem.objects.values_list("text", flat=True))
    assert texts == [f"⏰ Reminder: r{n}" for n in range(5)]
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 5
    assert Event.objects.filter(kind="reminder.sent").count() == 5
    assert not Reminder.objects.filter(status=ReminderStatus.ACTIVE).exists()


@pytest.mark.django_db(transaction=True)
def test_two_threads_claiming_one_reminder_get_it_once() -> None:
    from aisystem.services.reminders import reminder_claim

    ann, chat = person()
    reminder = schedule(ann, chat.pk, "in 10m stretch")
    start = threading.Barrier(2)
    claims: list[object] = []

    def claim() -> None:
        try:
            start.wait(timeout=10)
            claims.append(reminder_claim(reminder_id=reminder.pk, now=NOW + timedelta(hours=1)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(claims) == 2
    assert sum(claimed is not None for claimed in claims) == 1


def test_every_event_the_job_writes_matches_the_catalog(claude_is_the_fake: FakeClaude) -> None:
    from aisystem.event_catalog import event_validate

    ann, chat = person(Transport.API)
    schedule(ann, chat.pk, "in 10m stretch")
    prompt = schedule(ann, chat.pk, "every day 07:00 the news")

    reminders_deliver_due(now=prompt.due_at + timedelta(hours=1))

    kinds = set()
    for event in Event.objects.all():
        event_validate(event.kind, event.data)  # raises on a mismatch
        kinds.add(event.kind)
    assert {"reminder.sent", "message.answered"} <= kinds
    answered = Event.objects.get(kind="message.answered")
    assert answered.data["text"].endswith("You said: the news")  # an API chat's full answer


def test_a_prompt_of_someone_over_todays_budget_is_skipped_with_a_notice_and_costs_nothing(
    claude_is_the_fake: FakeClaude,
) -> None:
    ann, chat = person()
    RateLimitPolicy.objects.create(identity=ann, daily_token_budget=0)
    prompt = schedule(ann, chat.pk, "every day 07:00 the news")
    due = prompt.due_at

    assert reminders_deliver_due(now=due + timedelta(seconds=5)) == 1

    assert claude_is_the_fake.requests == []
    assert OutboxItem.objects.get().text == (
        "⏰ I skipped your scheduled prompt “the news”: You've reached today's usage limit. "
        "It resets at midnight."
    )
    assert not Message.objects.filter(direction=Direction.INBOUND).exists()
    prompt.refresh_from_db()
    assert (prompt.status, prompt.due_at) == (ReminderStatus.ACTIVE, due + timedelta(days=1))
