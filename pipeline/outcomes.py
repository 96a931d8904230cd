"""The end of a message's journey in the database: its final status, the stored reply with
its usage, cost and latency, and the events of steps 3 to 5, in one transaction.

Once that transaction commits, the outcome is counted in the metrics
(``aisystem.metrics.instruments``): the status, the cost, and the step timings the
processor's final event carries (``step_events.done_event``'s ``timings_ms``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from aisystem.events import PendingEvent, events_record
from aisystem.metrics.instruments import message_observe_on_commit
from aisystem.models import Chat, Direction, Message, MessageKind, MessageStatus, OutboxItem
from aisystem.services.usage import usage_record
from pipeline.claude import store as claude_store


@dataclass(frozen=True)
class Outcome:
    """What to record for one processed inbound message."""

    message_pk: int
    chat_pk: int
    identity_pk: int
    conversation_id: int | None
    transport: str
    status: str  # a MessageStatus value
    reason: str = ""
    reply: str = ""
    reply_kind: str = MessageKind.TEXT
    reply_ids: tuple[str, ...] = ()
    delivered: bool = True
    queued: bool = False  # the reply waits in the outbox for its transport's sender
    retry_at: datetime | None = None  # delivery failed for now: queue it for then
    reply_to_message_id: str = ""  # the inbound message's transport id
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0


def message_finish(
    outcome: Outcome,
    *,
    events: list[PendingEvent],
    now: datetime,
    calls: Sequence[claude_store.LoggedCall] = (),
) -> int | None:
    """Record the outcome, with the log rows of the Claude calls it collected (``calls``, see
    ``claude_store.calls_collect``); returns the stored reply's pk (None if there was no reply).
    """
    with transaction.atomic():
        claude_store.calls_record(calls)
        # The conversation is set here, not when the context is built: one UPDATE fewer.
        Message.objects.filter(pk=outcome.message_pk).update(
            conversation_id=outcome.conversation_id,
            status=outcome.status,
            status_reason=outcome.reason[:64],
            latency_ms=outcome.latency_ms,
            model=outcome.model,
            lease_owner="",  # finished: nobody holds it any more
            lease_until=None,
        )
        if outcome.retry_at is not None and outcome.reply:
            _reschedule(outcome)
            outcome = replace(outcome, queued=True)
        reply_pk = _reply_record(outcome, now=now) if outcome.reply else None
        _usage_record(outcome, counted_reply=reply_pk is not None, now=now)
        Chat.objects.filter(pk=outcome.chat_pk).update(last_message_at=now)
        events_record(
            events,
            transport=outcome.transport,
            chat_id=outcome.chat_pk,
            message_id=outcome.message_pk,
        )
        message_observe_on_commit(
            transport=outcome.transport,
            status=outcome.status,
            timings_ms=_step_timings(events),
            cost_usd=outcome.cost_usd,
        )
    return reply_pk


def _step_timings(events: Sequence[PendingEvent]) -> Mapping[str, float]:
    """The step timings of the outcome's final event; none for an outcome recorded without
    one (a deferred or scheduled answer, which has no steps of its own to time)."""
    for event in events:
        timings = event.data.get("timings_ms")
        if isinstance(timings, Mapping):
            return {
                str(step): float(ms) for step, ms in timings.items() if isinstance(ms, int | float)
            }
    return {}


def _usage_record(outcome: Outcome, *, counted_reply: bool, now: datetime) -> None:
    """The daily usage rollup, in this transaction: the message if it was answered or failed,
    and the tokens and cost of the reply stored with it (``aisystem.services.usage``)."""
    usage_record(
        identity_id=outcome.identity_pk,
        conversation_id=outcome.conversation_id,
        at=now,
        status=outcome.status,
        input_tokens=outcome.input_tokens if counted_reply else 0,
        output_tokens=outcome.output_tokens if counted_reply else 0,
        cost_usd=outcome.cost_usd if counted_reply else Decimal(0),
    )


def _reply_record(outcome: Outcome, *, now: datetime) -> int:
    """The reply, stored against the sender's identity (that is whose budget it uses)."""
    reply_id = outcome.reply_ids[0] if outcome.reply_ids else f"undelivered-{outcome.message_pk}"
    reply = _reply_row(outcome, reply_id, now=now)
    try:
        # A savepoint costs less than asking first whether the id is taken, which it never is
        # unless a transport reused an id: then keep the reply under another id, not lose it.
        with transaction.atomic():
            reply.save(force_insert=True)
    except IntegrityError:
        reply.transport_message_id = f"{reply_id}~{outcome.message_pk}"
        reply.save(force_insert=True)
    return reply.pk


def _reply_row(outcome: Outcome, reply_id: str, *, now: datetime) -> Message:
    return Message(
        transport=outcome.transport,
        chat_id=outcome.chat_pk,
        transport_message_id=reply_id,
        direction=Direction.OUTBOUND,
        conversation_id=outcome.conversation_id,
        identity_id=outcome.identity_pk,
        reply_to_id=outcome.message_pk,
        kind=outcome.reply_kind,
        status=_reply_status(outcome),
        status_reason="queued"
        if outcome.queued
        else ""
        if outcome.delivered
        else "delivery_failed",
        text=outcome.reply,
        model=outcome.model,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        cost_usd=outcome.cost_usd,
        latency_ms=outcome.latency_ms,
        sent_at=now if outcome.delivered else None,
        created_at=now,
    )


def _reschedule(outcome: Outcome) -> None:
    """The transport asked to wait: the reply goes to the outbox, due at ``retry_at``."""
    OutboxItem.objects.get_or_create(
        idempotency_key=f"reply:{outcome.message_pk}",
        defaults={
            "transport": outcome.transport,
            "chat_id": outcome.chat_pk,
            "source_message_id": outcome.message_pk,
            "text": outcome.reply,
            "reply_to_transport_message_id": outcome.reply_to_message_id,
            "available_at": outcome.retry_at,
        },
    )


def _reply_status(outcome: Outcome) -> str:
    if outcome.delivered:
        return MessageStatus.DELIVERED
    return MessageStatus.PROCESSING if outcome.queued else MessageStatus.FAILED


def message_mark(*, message_pk: int, status: str, reason: str = "") -> None:
    """Change one inbound message's status (interrupted, deferred, …); its lease ends."""
    Message.objects.filter(pk=message_pk).update(
        status=status, status_reason=reason[:64], lease_owner="", lease_until=None
    )


def messages_mark_interrupted(*, transport: str, keys: Iterable[tuple[str, str]]) -> int:
    """Mark these inbound messages, given as (chat external id, transport message id), as
    interrupted if they are still being processed; the next start resumes them."""
    matches = Q(pk__in=[])
    for chat_id, message_id in keys:
        matches |= Q(chat__external_id=chat_id, transport_message_id=message_id)
    return Message.objects.filter(
        matches,
        transport=transport,
        direction=Direction.INBOUND,
        status__in=[MessageStatus.RECEIVED, MessageStatus.PROCESSING],
    ).update(status=MessageStatus.INTERRUPTED, status_reason="shutdown")


def messages_mark_orphans_interrupted(*, transport: str, now: datetime | None = None) -> int:
    """At a transport's start: its messages left "processing" by a process that died are
    marked interrupted, to be resumed. That is every one the bridge held (one bridge runs per
    account, so a bridge's lease is its dead predecessor's) and every one whose lease ran out;
    a message a live worker is answering (a deferred one: its lease is renewed) is left to
    it."""
    moment = now or timezone.now()
    return (
        Message.objects.filter(
            transport=transport,
            direction=Direction.INBOUND,
            status__in=[MessageStatus.RECEIVED, MessageStatus.PROCESSING],
        )
        .filter(
            Q(lease_until__isnull=True)
            | Q(lease_until__lt=moment)
            | Q(lease_owner__startswith="bridge:")
        )
        .update(
            status=MessageStatus.INTERRUPTED,
            status_reason="process_died",
            lease_owner="",
            lease_until=None,
        )
    )


def messages_interrupted(*, transport: str, limit: int = 500) -> list[tuple[str, str]]:
    """The interrupted inbound messages to resume, oldest first, as (chat id, message id)."""
    rows = (
        Message.objects.filter(
            transport=transport, direction=Direction.INBOUND, status=MessageStatus.INTERRUPTED
        )
        .order_by("created_at", "pk")
        .values_list("chat__external_id", "transport_message_id")[:limit]
    )
    return [(str(chat_id), str(message_id)) for chat_id, message_id in rows]
