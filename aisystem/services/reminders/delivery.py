"""Delivering reminders, the core's half: claiming with a lease, sending a one-off, and
recording an occurrence as delivered (the assistant's answers to prompts are the pipeline's,
``pipeline.reminders.delivery``). See the package's docstring for the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q

from aisystem.events import PendingEvent, events_record
from aisystem.models import (
    Chat,
    Direction,
    Message,
    MessageStatus,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Transport,
)
from aisystem.services.outbox import outbox_enqueue
from aisystem.services.reminders.times import (
    Recurrence,
    clock_text,
    person_time_zone,
    recurrence_next,
)

LATE_AFTER = timedelta(minutes=2)
# Longer than any answer takes (a prompt may run a tool loop); a dead worker's reminders wait
# this long before another worker delivers them.
LEASE = timedelta(minutes=5)
REMINDER_PREFIX = "⏰ Reminder: "


@dataclass(frozen=True)
class ClaimedReminder:
    """A reminder a worker holds until ``lease`` (the claim's token): one occurrence of it."""

    id: int
    kind: str
    text: str
    due_at: datetime
    recurrence: str
    lease: datetime
    identity_id: int
    chat_pk: int
    transport: str
    zone: ZoneInfo

    @property
    def occurrence(self) -> str:
        """Names this occurrence in idempotency keys: "12-1798099200"."""
        return f"{self.id}-{int(self.due_at.timestamp())}"


def reminders_due(*, now: datetime, limit: int = 50) -> list[int]:
    """Ids of active reminders due by ``now`` and not held by a live lease, oldest first."""
    return list(
        Reminder.objects.filter(status=ReminderStatus.ACTIVE, due_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def reminder_claim(
    *, reminder_id: int, now: datetime, lease: timedelta = LEASE
) -> ClaimedReminder | None:
    """Take one due reminder for delivery, or None: another worker holds it, it is no longer
    due, or its person is blocked (then it is cancelled: they get nothing from us)."""
    until = now + lease
    taken = (
        Reminder.objects.filter(pk=reminder_id, status=ReminderStatus.ACTIVE, due_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until)
    )
    if not taken:
        return None
    row = Reminder.objects.select_related("identity", "chat").get(pk=reminder_id)
    if row.identity.is_blocked:
        Reminder.objects.filter(pk=row.pk).update(status=ReminderStatus.CANCELLED)
        return None
    return ClaimedReminder(
        id=row.pk,
        kind=row.kind,
        text=row.text,
        due_at=row.due_at,
        recurrence=row.recurrence,
        lease=until,
        identity_id=row.identity_id,
        chat_pk=row.chat_id,
        transport=row.chat.transport,
        zone=person_time_zone(identity_id=row.identity_id),
    )


def reminder_release(*, claimed: ClaimedReminder) -> None:
    """Give the claim back: the occurrence stays due and the next run tries again."""
    Reminder.objects.filter(pk=claimed.id, claimed_until=claimed.lease).update(claimed_until=None)


def reminder_advance(*, claimed: ClaimedReminder, now: datetime) -> bool:
    """Record this occurrence as delivered: a one-off is sent, a recurring prompt moves to its
    next occurrence after ``now``. False (nothing changed) when the claim was lost: the lease
    ran out and another worker took it, or the reminder was cancelled meanwhile. Call it in
    the transaction that queues the message, and queue nothing when it is False."""
    fields: dict[str, object] = {"claimed_until": None, "sent_at": now}
    if claimed.kind == ReminderKind.PROMPT:
        recurrence = Recurrence.parse(claimed.recurrence)
        fields["due_at"] = recurrence_next(recurrence, claimed.zone, after=now)
    else:
        fields["status"] = ReminderStatus.SENT
    return bool(
        Reminder.objects.filter(
            pk=claimed.id, status=ReminderStatus.ACTIVE, claimed_until=claimed.lease
        ).update(**fields)
    )


def late_note(claimed: ClaimedReminder, now: datetime) -> str:
    """ "(due at 09:00, sent late)" when this occurrence goes out late, else ""."""
    if now - claimed.due_at <= LATE_AFTER:
        return ""
    return f"(due at {clock_text(claimed.due_at, claimed.zone, now)}, sent late)"


def reminder_sent_event(claimed: ClaimedReminder, now: datetime) -> PendingEvent:
    """The catalog's ``reminder.sent``."""
    late = max(0, int((now - claimed.due_at).total_seconds()))
    return PendingEvent(
        kind="reminder.sent",
        summary="Reminder sent late" if now - claimed.due_at > LATE_AFTER else "Reminder sent",
        data={
            "reminder_id": claimed.id,
            "late_seconds": late,
            "recurring": claimed.kind == ReminderKind.PROMPT,
        },
        created_at=now,
    )


def reminder_enqueue(*, claimed: ClaimedReminder, text: str) -> tuple[str, bool]:
    """Hand one occurrence's message to its chat's transport: the outbox for Telegram (the
    bridge sends it) and the browser chat (its open page takes it); a REST chat has no one to
    push to, so its stored message is the delivery (the caller reads its chat's history).
    Returns (the stored message's transport id, delivered now)."""
    if claimed.transport == Transport.API:
        return f"reminder-{claimed.occurrence}", True
    item_id, _ = outbox_enqueue(
        transport=claimed.transport,
        chat_pk=claimed.chat_pk,
        text=text,
        idempotency_key=f"reminder:{claimed.occurrence}",
    )
    # The browser chat marks "outbox-<id>" delivered when its page takes the item.
    return f"outbox-{item_id}", False


def reminder_send_once(*, claimed: ClaimedReminder, now: datetime, text: str = "") -> bool:
    """Deliver a claimed one-off reminder: "⏰ Reminder: …" (or ``text``: a scheduled prompt
    the gate refused is told so instead) queued for its transport, stored as an outbound
    message of the chat, the ``reminder.sent`` event, and the reminder marked sent (or moved
    to its next occurrence), all in one transaction. False when the claim was lost (nothing
    is written)."""
    note = late_note(claimed, now)
    text = text or f"{REMINDER_PREFIX}{claimed.text}" + (f" {note}" if note else "")
    with transaction.atomic():
        if not reminder_advance(claimed=claimed, now=now):
            return False
        reply_id, delivered = reminder_enqueue(claimed=claimed, text=text)
        message, _ = Message.objects.get_or_create(
            transport=claimed.transport,
            chat_id=claimed.chat_pk,
            transport_message_id=reply_id,
            direction=Direction.OUTBOUND,
            defaults={
                "identity_id": claimed.identity_id,
                "status": MessageStatus.DELIVERED if delivered else MessageStatus.PROCESSING,
                "status_reason": "" if delivered else "queued",
                "text": text,
                "sent_at": now if delivered else None,
                "created_at": now,
            },
        )
        Chat.objects.filter(pk=claimed.chat_pk).update(last_message_at=now)
        events_record(
            [reminder_sent_event(claimed, now)],
            transport=claimed.transport,
            chat_id=claimed.chat_pk,
            message_id=message.pk,
        )
    return True
