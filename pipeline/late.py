"""Answers given away from their sender: deferred answers, background answers and scheduled
prompts. Each is queued for its chat's transport and announced with the catalog's public
``message.answered`` / ``message.failed`` event in the same way, so that a webhook or an
alert sees a late answer as it sees a prompt one.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from aisystem.events import PendingEvent, preview
from aisystem.models import MessageStatus, Transport
from aisystem.services.outbox import outbox_enqueue
from pipeline import outcomes
from pipeline.replies import Reply
from pipeline.types import AgentResponse, InboundMessage, MessageContext


def late_reply_queue(
    *,
    transport: str,
    chat_pk: int,
    text: str,
    idempotency_key: str,
    reply_to: str = "",
    source_message_pk: int | None = None,
) -> tuple[str, bool]:
    """Hand a late reply to its transport; returns (the stored reply's transport id,
    delivered now). Telegram's bridge and the browser chat's open page drain the outbox (the
    chat marks "outbox-<id>" delivered when its page takes it); a REST chat has no one to
    push to, so its stored message is the delivery (``GET /api/v1/chats/{id}/messages`` and
    the webhook). The same key twice queues one reply."""
    if transport == Transport.API:
        return idempotency_key.replace(":", "-"), True
    item_id, _ = outbox_enqueue(
        transport=transport,
        chat_pk=chat_pk,
        text=text,
        idempotency_key=idempotency_key,
        reply_to=reply_to,
        source_message_pk=source_message_pk,
    )
    return f"outbox-{item_id}", False


def late_answer_event(
    *,
    transport: str,
    reply: Reply,
    response: AgentResponse,
    text: str,
    reason: str,
    queued: bool,
    summary: tuple[str, str],
    extra: dict[str, object] | None = None,
    created_at: datetime | None = None,
) -> PendingEvent:
    """The late outcome as ``message.answered`` (or ``.failed``); ``summary`` is the (answered,
    failed) wording. An API chat's event carries the whole ``text``: a REST integrator may
    have no other way to hear of it than its webhook (or polling the chat's history)."""
    answered = reply.status == MessageStatus.ANSWERED
    data: dict[str, object] = {
        "status": str(reply.status),
        "reason": reason,
        "delivered": not queued,
        "parts": 1,
        "reply": preview(text),
        "cost_usd": str(response.cost_usd),
        "queued": queued,
        "outcome": response.outcome,
        **(extra or {}),
    }
    if transport == Transport.API:
        data["text"] = text
    return PendingEvent(
        kind=f"message.{reply.status}",
        summary=summary[0] if answered else summary[1],
        level="info" if answered else "warning",
        data=data,
        created_at=created_at or timezone.now(),
    )


def late_answer_record(
    *,
    message: InboundMessage,
    context: MessageContext,
    reply: Reply,
    response: AgentResponse,
    kind: str,
    reason: str,
    summary: tuple[str, str],
) -> None:
    """Queue a late reply to ``message`` (idempotency key ``<kind>:<message pk>``), record the
    message's outcome and announce it (``message.answered``/``.failed`` with ``<kind>: true``),
    in the caller's transaction: the caller has just checked it still holds the message."""
    reply_id, delivered = late_reply_queue(
        transport=message.transport,
        chat_pk=context.chat_pk,
        text=reply.text,
        idempotency_key=f"{kind}:{context.message_pk}",
        reply_to=message.message_id,
        source_message_pk=context.message_pk,
    )
    event = late_answer_event(
        transport=message.transport,
        reply=reply,
        response=response,
        text=reply.text,
        reason=reason,
        queued=not delivered,
        summary=summary,
        extra={kind: True},
    )
    outcomes.message_finish(
        outcomes.Outcome(
            message_pk=context.message_pk,
            chat_pk=context.chat_pk,
            identity_pk=context.identity_id,
            conversation_id=context.conversation_id,
            transport=message.transport,
            status=reply.status,
            reason=reason,
            reply=reply.text,
            reply_ids=(reply_id,),
            delivered=delivered,
            queued=not delivered,
            model=response.model,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            cost_usd=response.cost_usd,
        ),
        events=[event],
        now=timezone.now(),
    )
