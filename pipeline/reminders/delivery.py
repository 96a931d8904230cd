"""The minutely job that delivers due reminders (``reminders_deliver_due``).

For each due reminder, claimed with a lease (``aisystem.services.reminders.reminder_claim``,
so each occurrence goes out once however many workers run the job):

* a **one-off** is sent by the core in one transaction: "⏰ Reminder: …" queued for the
  chat's transport, stored as an outbound message, the ``reminder.sent`` event;
* a **recurring prompt** is answered by the assistant as if the person had sent it: it is
  stored as an inbound message of theirs (so it has a context, a conversation and a place in
  the history, as a deferred message has), answered by the agent with that person's tools,
  and its answer recorded and queued like a deferred answer, with the reminder moved to its
  next occurrence in the same transaction. While Claude is unavailable the prompt stays due
  (the stored prompt is removed, so nothing half-done remains) and the run stops; the next
  run tries again, and the answer then says it is late.

Delivery reaches Telegram through the bridge's outbox, the browser chat through its open
page (the outbox) or its history, and REST callers through ``GET /api/v1/chats/{id}/messages``
and the ``message.answered`` / ``reminder.sent`` webhooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aisystem.events import PendingEvent, preview
from aisystem.models import (
    Direction,
    Identity,
    Message,
    MessageKind,
    MessageStatus,
    ReminderKind,
)
from aisystem.services.reminders import (
    ClaimedReminder,
    late_note,
    reminder_advance,
    reminder_claim,
    reminder_enqueue,
    reminder_release,
    reminder_send_once,
    reminder_sent_event,
    reminders_due,
)
from pipeline import conversations, outcomes
from pipeline.admission import scheduled_prompt_refusal
from pipeline.agent import AgentOrchestrator, ClaudeAPI
from pipeline.agent_request import AttachmentLimits
from pipeline.claude.client import ClaudeClient
from pipeline.late import late_answer_event
from pipeline.replies import Reply, agent_reply
from pipeline.security_gate import SecurityGate
from pipeline.tools import ToolsFor, tools_for_message
from pipeline.type_router import TypeRouter
from pipeline.types import AgentResponse, InboundMessage, MessageContext

logger = logging.getLogger(__name__)

BATCH_SIZE = 50


class _LeaseLost(Exception):
    """Another worker took the occurrence while we answered it: record nothing."""


@dataclass(frozen=True)
class _Prompt:
    claimed: ClaimedReminder
    message: InboundMessage
    context: MessageContext


def reminders_deliver_due(
    *,
    now: datetime | None = None,
    client: ClaudeAPI | None = None,
    tools: ToolsFor | None = None,
    limit: int = BATCH_SIZE,
) -> int:
    """The scheduled job: deliver what is due by ``now`` (default: the real time); returns
    how many occurrences were delivered. ``client`` and ``tools`` are for tests; by default a
    real Claude client (closed when the run ends) and each person's own tools."""
    moment = now or timezone.now()
    due = reminders_due(now=moment, limit=limit)
    prompts: list[int] = []
    sent = 0
    for reminder_id in due:
        claimed = reminder_claim(reminder_id=reminder_id, now=moment)
        if claimed is None:
            continue
        if claimed.kind == ReminderKind.PROMPT:
            reminder_release(claimed=claimed)  # claimed again just before it is answered
            prompts.append(reminder_id)
        elif reminder_send_once(claimed=claimed, now=moment):
            sent += 1
    if prompts:
        sent += async_to_sync(_answer_prompts)(prompts, moment, client, tools)
    if due:
        logger.info("reminders: %d of %d due delivered", sent, len(due))
    return sent


async def _answer_prompts(
    reminder_ids: list[int], now: datetime, client: ClaudeAPI | None, tools: ToolsFor | None
) -> int:
    # A run has an event loop of its own, so its Claude client is made and closed here.
    own: ClaudeClient | None = None
    if client is None:
        own = client = ClaudeClient()
    config = settings.PIPELINE
    limits = AttachmentLimits.from_settings(config)
    router = TypeRouter(limits=limits)
    gate = SecurityGate(
        stale_after_seconds=config["STALE_AFTER_SECONDS"],
        max_input_chars=config["MAX_INPUT_CHARS"],
    )
    agent = AgentOrchestrator(
        client=client,
        tools=tools if tools is not None else tools_for_message,
        limits=limits,
        prices=settings.MODEL_PRICES,
        max_tool_rounds=config["MAX_TOOL_ROUNDS"],
    )
    answered = 0
    try:
        for reminder_id in reminder_ids:
            claimed = await sync_to_async(reminder_claim)(reminder_id=reminder_id, now=now)
            if claimed is None:
                continue
            try:
                outcome = await _answer_one(router, agent, gate, claimed, now)
            except Exception:
                # A bug, not Claude (the agent reports those): the lease runs out and a later
                # run tries again, so one bad prompt neither loops every minute nor blocks.
                logger.exception("reminder %d: answering the prompt failed", claimed.id)
                continue
            if outcome is None:
                break  # Claude is down: the next run tries again
            answered += outcome
    finally:
        if own is not None:
            await own.aclose()
    return answered


async def _answer_one(
    router: TypeRouter,
    agent: AgentOrchestrator,
    gate: SecurityGate,
    claimed: ClaimedReminder,
    now: datetime,
) -> int | None:
    """Answer one claimed prompt: 1 if recorded, 0 if the claim was lost, None if Claude
    is unavailable (the prompt stays due). One the gate refuses (the person is over today's
    budget) is skipped: moved to its next occurrence, and the person told why."""
    refusal = await sync_to_async(scheduled_prompt_refusal)(
        identity_id=claimed.identity_id, chat_pk=claimed.chat_pk, gate=gate, now=now
    )
    if refusal is not None:
        logger.info("reminder %d: prompt skipped (%s)", claimed.id, refusal.reason)
        if not refusal.notice:
            return int(await sync_to_async(reminder_advance)(claimed=claimed, now=now))
        skipped = (
            f"⏰ I skipped your scheduled prompt “{preview(claimed.text, 60)}”: {refusal.notice}"
        )
        return int(await sync_to_async(reminder_send_once)(claimed=claimed, now=now, text=skipped))
    prompt = await sync_to_async(_prompt_store)(claimed, now)
    plan = router.plan(prompt.message, prompt.context)
    plan = replace(plan, handler="agent", reason="", stream=False, command="")
    response = await agent.run(prompt.message, prompt.context, plan)
    if response.outcome == "unavailable":
        await sync_to_async(_prompt_abandon)(prompt)
        return None
    recorded = await sync_to_async(_prompt_record)(prompt, agent_reply(response), response, now)
    return int(recorded)


def _prompt_store(claimed: ClaimedReminder, now: datetime) -> _Prompt:
    """The prompt as an inbound message of its person, and its context (as a deferred
    message is answered: the chat's current conversation and history)."""
    row, _ = Message.objects.select_related("chat").get_or_create(
        transport=claimed.transport,
        chat_id=claimed.chat_pk,
        transport_message_id=f"reminder-{claimed.occurrence}",
        direction=Direction.INBOUND,
        defaults={
            "identity_id": claimed.identity_id,
            "kind": MessageKind.TEXT,
            "status": MessageStatus.PROCESSING,
            "status_reason": "reminder",
            "text": claimed.text,
            "sent_at": now,
            "created_at": now,
        },
    )
    row = Message.objects.select_related("chat").get(pk=row.pk)
    identity = Identity.objects.get(pk=claimed.identity_id)
    message, context = conversations.context_for_stored(row, identity)
    return _Prompt(claimed=claimed, message=message, context=context)


def _prompt_abandon(prompt: _Prompt) -> None:
    """Claude could not answer: remove the stored prompt and give the claim back."""
    Message.objects.filter(pk=prompt.context.message_pk).delete()
    reminder_release(claimed=prompt.claimed)


def _prompt_record(prompt: _Prompt, reply: Reply, response: AgentResponse, now: datetime) -> bool:
    """Store and queue the answer and move the reminder on, in one transaction; False (and
    nothing stored) when the claim was lost meanwhile."""
    claimed = prompt.claimed
    note = late_note(claimed, now)
    text = f"{note}\n\n{reply.text}" if note else reply.text
    try:
        with transaction.atomic():
            if not reminder_advance(claimed=claimed, now=now):
                raise _LeaseLost
            reply_id, delivered = reminder_enqueue(claimed=claimed, text=text)
            outcomes.message_finish(
                outcomes.Outcome(
                    message_pk=prompt.context.message_pk,
                    chat_pk=claimed.chat_pk,
                    identity_pk=claimed.identity_id,
                    conversation_id=prompt.context.conversation_id,
                    transport=claimed.transport,
                    status=reply.status,
                    reason="reminder" if reply.status == MessageStatus.ANSWERED else reply.reason,
                    reply=text,
                    reply_ids=(reply_id,),
                    delivered=delivered,
                    queued=not delivered,
                    model=response.model,
                    input_tokens=response.input_tokens,
                    output_tokens=response.output_tokens,
                    cost_usd=response.cost_usd,
                ),
                events=[
                    reminder_sent_event(claimed, now),
                    _answer_event(claimed, reply, response, text, queued=not delivered, now=now),
                ],
                now=now,
            )
    except _LeaseLost:
        # The stored prompt is shared with the worker that holds the claim now: leave it.
        logger.warning("reminder %d: claim lost while answering; not recorded", claimed.id)
        return False
    return True


def _answer_event(
    claimed: ClaimedReminder,
    reply: Reply,
    response: AgentResponse,
    text: str,
    *,
    queued: bool,
    now: datetime,
) -> PendingEvent:
    """The answer as the catalog's ``message.answered`` (or ``.failed``), as any late
    answer's: a REST integrator's webhook carries the whole text (it has no other push)."""
    return late_answer_event(
        transport=claimed.transport,
        reply=reply,
        response=response,
        text=text,
        reason="reminder",
        queued=queued,
        summary=("Scheduled prompt answered", "Scheduled prompt failed"),
        created_at=now,
    )
