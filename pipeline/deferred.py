"""Deferred messages: answered once Claude is back, so nothing waits forever or piles up.

A message is deferred when Claude could not answer it for reasons on Claude's side: the
breaker open, no usable key, or a call that still failed after every retry (529 overloaded,
5xx, timeouts, connection errors, broken streams; see ``pipeline.agent._failure_outcome``).
Its sender was told so (``replies.DEFERRED_REPLY``; a partly streamed answer was replaced by
that notice). A scheduled job (``answer_deferred_messages``, every minute) then:

* gives up on messages older than ``DEFERRED_MAX_AGE`` (marked failed, reason "expired"),
  so the backlog is bounded;
* stops at once while the breaker refuses calls;
* claims each remaining message (deferred → processing, a conditional UPDATE, so two workers
  never answer the same one), answers it from its stored text with the conversation's
  history, and records the reply as a new message; a message Claude still cannot answer
  goes back to deferred and the run stops (the next one tries again), and one Claude now
  refuses as invalid fails, and its sender is told so (``replies.FAILED_REPLY``).

Delivery: a REST client finds the reply as a new ``out`` message of
``GET /api/v1/chats/{chat_id}/messages`` (and at ``/api/v1/messages/{id}``); a Telegram or
browser reply goes to the outbox, which that transport's sender drains (the reply is stored
with status "processing" until then). Attachments are not kept, so a deferred photo or PDF
is answered from its description only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.utils import timezone

from aisystem.events import PendingEvent, preview
from aisystem.models import (
    CircuitBreaker,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    Transport,
)
from pipeline import conversations, outcomes
from pipeline.agent import ClaudeAPI
from pipeline.claude.client import ClaudeClient
from pipeline.processor import UnifiedMessageProcessor
from pipeline.replies import Reply, agent_reply
from pipeline.types import AgentResponse, InboundMessage, MessageContext

logger = logging.getLogger(__name__)

DEFERRED_MAX_AGE = timedelta(hours=24)
BATCH_SIZE = 20


@dataclass(frozen=True)
class _Claimed:
    message: InboundMessage
    context: MessageContext


def deferred_expire(*, now: datetime | None = None) -> int:
    """Give up on deferred messages older than DEFERRED_MAX_AGE; returns how many."""
    cutoff = (now or timezone.now()) - DEFERRED_MAX_AGE
    return Message.objects.filter(
        direction=Direction.INBOUND, status=MessageStatus.DEFERRED, created_at__lt=cutoff
    ).update(status=MessageStatus.FAILED, status_reason="expired")


def _claim(message_pk: int) -> _Claimed | None:
    """Take one deferred message for answering, or None if another worker has it."""
    with transaction.atomic():
        taken = Message.objects.filter(pk=message_pk, status=MessageStatus.DEFERRED).update(
            status=MessageStatus.PROCESSING
        )
        if not taken:
            return None
        row = Message.objects.select_related("chat", "identity").get(pk=message_pk)
        if row.identity is None:
            outcomes.message_mark(
                message_pk=message_pk, status=MessageStatus.FAILED, reason="no_sender"
            )
            return None
        inbound, context = conversations.context_for_stored(row, row.identity)
    return _Claimed(message=inbound, context=context)


def _deliver(claimed: _Claimed, text: str) -> tuple[str, bool]:
    """Queue the reply for its transport; returns (reply id, delivered now)."""
    message = claimed.message
    if message.transport == Transport.API:
        return f"deferred-{claimed.context.message_pk}", True
    item, _ = OutboxItem.objects.get_or_create(
        idempotency_key=f"deferred:{claimed.context.message_pk}",
        defaults={
            "transport": message.transport,
            "chat_id": claimed.context.chat_pk,
            "source_message_id": claimed.context.message_pk,
            "text": text,
            "reply_to_transport_message_id": message.message_id,
        },
    )
    return f"outbox-{item.pk}", False


async def _answer(processor: UnifiedMessageProcessor, claimed: _Claimed) -> bool:
    """Answer one claimed message; False if Claude is still unavailable (it stays deferred)."""
    plan = processor.router.plan(claimed.message, claimed.context)
    if plan.handler != "agent":  # it was routed to the agent when it arrived
        plan = replace(plan, handler="agent", reason="")
    response = await processor.agent.run(claimed.message, claimed.context, plan)
    if response.outcome == "unavailable":
        await sync_to_async(outcomes.message_mark)(
            message_pk=claimed.context.message_pk,
            status=MessageStatus.DEFERRED,
            reason="claude_unavailable",
        )
        return False
    await sync_to_async(_record)(claimed, agent_reply(response), response)
    return True


def _record(claimed: _Claimed, reply: Reply, response: AgentResponse) -> None:
    """Store the late reply (an answer, or the "refused" notice) and queue it for delivery."""
    answered = reply.status == MessageStatus.ANSWERED
    reason = "deferred" if answered else reply.reason
    with transaction.atomic():
        reply_id, delivered = _deliver(claimed, reply.text)
        outcomes.message_finish(
            outcomes.Outcome(
                message_pk=claimed.context.message_pk,
                chat_pk=claimed.context.chat_pk,
                identity_pk=claimed.context.identity_id,
                conversation_id=claimed.context.conversation_id,
                transport=claimed.message.transport,
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
            events=[_outcome_event(claimed, reply, response, reason=reason, queued=not delivered)],
            now=timezone.now(),
        )


def _outcome_event(
    claimed: _Claimed, reply: Reply, response: AgentResponse, *, reason: str, queued: bool
) -> PendingEvent:
    """The late outcome as the catalog's public ``message.answered`` / ``message.failed``, with
    ``deferred`` set, so webhooks and alerts see a late answer as they see a prompt one. An API
    chat's event carries the whole ``text``: a REST integrator may have no other way to hear
    of it than its webhook (or polling the chat's history)."""
    answered = reply.status == MessageStatus.ANSWERED
    data: dict[str, object] = {
        "status": str(reply.status),
        "reason": reason,
        "delivered": not queued,
        "parts": 1,
        "reply": preview(reply.text),
        "cost_usd": str(response.cost_usd),
        "deferred": True,
        "queued": queued,
        "outcome": response.outcome,
    }
    if claimed.message.transport == Transport.API:
        data["text"] = reply.text
    return PendingEvent(
        kind=f"message.{reply.status}",
        summary="Answered after Claude came back" if answered else "Deferred answer failed",
        level="info" if answered else "warning",
        data=data,
    )


async def _answer_batch(message_pks: list[int], client: ClaudeAPI | None) -> int:
    # Each run has an event loop of its own, so the Claude client (whose HTTP connections
    # belong to that loop) is made here and closed at the end, not shared between runs.
    own = ClaudeClient() if client is None else None
    processor = UnifiedMessageProcessor(client=client or own)
    answered = 0
    try:
        for pk in message_pks:
            claimed = await sync_to_async(_claim)(pk)
            if claimed is None:
                continue
            if not await _answer(processor, claimed):
                break  # still unavailable: try again at the next run
            answered += 1
    finally:
        if own is not None:
            await own.aclose()
    return answered


def _breaker_refusing(now: datetime) -> bool:
    """Open and not yet due for a probe. (Once due, our first call is the probe.)"""
    return CircuitBreaker.objects.filter(
        service="anthropic", state=CircuitBreaker.State.OPEN, open_until__gt=now
    ).exists()


def deferred_answer(*, limit: int = BATCH_SIZE, client: ClaudeAPI | None = None) -> int:
    """The scheduled job: expire old ones, then answer up to ``limit`` (oldest first).
    Returns how many were settled: answered, or failed because Claude refused them (a message
    Claude still cannot answer stays deferred and is not counted). ``client`` is for tests; by
    default a real one, closed when the run ends."""
    now = timezone.now()
    deferred_expire(now=now)
    if _breaker_refusing(now):
        return 0
    pending = list(
        Message.objects.filter(direction=Direction.INBOUND, status=MessageStatus.DEFERRED)
        .exclude(status_reason="background")  # pipeline.background answers those
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not pending:
        return 0
    answered = async_to_sync(_answer_batch)(pending, client)
    logger.info("answered %d of %d deferred messages", answered, len(pending))
    return answered
