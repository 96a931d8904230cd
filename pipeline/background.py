"""Background answers: a message whose plan has ``background=True`` (``/bg <task>``, a large
PDF, a large attachment found in catch-up) is answered by a django-q2 task, not while its
sender waits.

1. **At once** (the processor): the sender is told ``WORKING_ON_IT``. Before that, the
   message is marked for the background (``background_hold``: reason "background", its
   attachments kept as ``HeldAttachment`` rows so a worker on any host can read them); its
   outcome is recorded as deferred, and then the task is queued (``background_enqueue``).
2. **The task** (``background_answer``) claims the message with a conditional UPDATE and a
   lease in the row (``lease_owner``/``lease_until``), answers it with the conversation's
   history and the person's tools, renewing the lease every few seconds, and records the
   answer, queues it for the chat's transport (idempotency key ``background:<pk>``) and
   announces it (``message.answered``, ``background: true``), all in one transaction that
   first checks it still holds the lease.
3. **Crashes.** A worker killed mid-answer stops renewing; once its lease has run out the
   minutely sweep (``background_sweep``) puts the message back and queues it again, and
   django-q2's own retry may too: both end in one claim, so one answer. The same sweep
   re-queues a message whose task was lost before it ran (the process died between the
   record and the enqueue) and drops the attachments of finished messages.
4. **/cancel** (``background_cancel``) marks the chat's queued or running background answers
   failed ("cancelled"): a queued one is never claimed, and a running one loses its lease at
   the next renewal, which stops its model call, and records nothing.

While Claude is unavailable the task gives the message back (deferred, reason still
"background") and the sweep tries it again a minute later; after ``DEFERRED_MAX_AGE`` the
deferred job's expiry marks it failed, like any deferred message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from aisystem.events import PendingEvent, events_record, preview
from aisystem.models import Direction, HeldAttachment, Message, MessageKind, MessageStatus
from pipeline import conversations, outcomes
from pipeline.agent import AgentOrchestrator, ClaudeAPI
from pipeline.agent_request import AttachmentLimits
from pipeline.claude.client import ClaudeClient
from pipeline.commands import parse_command
from pipeline.late import late_answer_record
from pipeline.replies import agent_reply
from pipeline.tools import ToolsFor, tools_for_message
from pipeline.type_router import TypeRouter
from pipeline.types import AgentResponse, Attachment, InboundMessage, MessageContext

logger = logging.getLogger(__name__)

BACKGROUND = "background"  # the inbound message's status reason while it waits or runs
TASK = "aisystem.tasks.answer_in_background"
WORKING_ON_IT = "Working on it. I'll send the answer here when it's ready; send /cancel to stop it."
LEASE = timedelta(seconds=30)
RENEW_EVERY_SECONDS = 5.0
# How long a queued task may wait before the sweep queues it again (a lost task); a
# duplicate finds nothing to claim, so this only bounds the work done twice.
QUEUED_GRACE = timedelta(minutes=10)
RETRY_UNAVAILABLE_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 100
_WAITING = (MessageStatus.DEFERRED, MessageStatus.PROCESSING)


@dataclass(frozen=True)
class _Claimed:
    message: InboundMessage
    context: MessageContext
    owner: str


def background_hold(*, message_pk: int, attachments: Sequence[Attachment], now: datetime) -> None:
    """Mark a message being processed for the background, and keep what a worker needs to
    answer it: the attachments with content. The sweep leaves it alone for QUEUED_GRACE."""
    with transaction.atomic():
        HeldAttachment.objects.bulk_create(
            HeldAttachment(
                message_id=message_pk,
                position=position,
                kind=attachment.kind,
                mime_type=attachment.mime_type,
                file_name=attachment.file_name,
                data=attachment.data,
            )
            for position, attachment in enumerate(attachments)
            if attachment.data is not None
        )
        # A /bg task is a question like any other: in the history, not hidden as a command.
        Message.objects.filter(pk=message_pk, kind=MessageKind.COMMAND).update(
            kind=MessageKind.TEXT
        )
        Message.objects.filter(pk=message_pk).update(
            status_reason=BACKGROUND, lease_owner="", lease_until=now + QUEUED_GRACE
        )


def background_enqueue(message_pk: int) -> None:
    """Queue the task that answers the message (django-q2's broker: the database by default,
    so the task survives a restart); the sweep leaves it to that task for QUEUED_GRACE."""
    from django_q.tasks import async_task

    Message.objects.filter(
        pk=message_pk, status=MessageStatus.DEFERRED, status_reason=BACKGROUND
    ).update(lease_until=timezone.now() + QUEUED_GRACE)
    async_task(TASK, message_pk, task_name=f"background-{message_pk}", group=BACKGROUND)


def background_answer(
    message_pk: int, *, client: ClaudeAPI | None = None, tools: ToolsFor | None = None
) -> str:
    """The task: answer one background message unless another worker has it or it was
    cancelled. Returns what happened ("answered", "failed", "unavailable", "lost", "taken"),
    for the task's result in the admin. ``client`` and ``tools`` are for tests."""
    owner = _owner()
    claimed = _claim(message_pk, owner, timezone.now())
    if claimed is None:
        return "taken"
    return async_to_sync(_answer)(claimed, client, tools)


def background_cancel(*, chat_pk: int, identity_id: int) -> list[str]:
    """/cancel: fail the sender's queued and running background answers in this chat;
    returns a preview of each cancelled request's text."""
    with transaction.atomic():
        rows = list(
            Message.objects.filter(
                chat_id=chat_pk,
                identity_id=identity_id,
                direction=Direction.INBOUND,
                status__in=_WAITING,
                status_reason=BACKGROUND,
            ).values_list("pk", "transport", "text")
        )
        if not rows:
            return []
        Message.objects.filter(pk__in=[pk for pk, _, _ in rows], status__in=_WAITING).update(
            status=MessageStatus.FAILED, status_reason="cancelled", lease_owner="", lease_until=None
        )
        HeldAttachment.objects.filter(message_id__in=[pk for pk, _, _ in rows]).delete()
        for pk, transport, _ in rows:
            events_record([_cancelled_event()], transport=transport, chat_id=chat_pk, message_id=pk)
    return [preview(_task_text(text), 60) for _, _, text in rows]


def background_sweep(*, now: datetime | None = None) -> int:
    """The minutely job: queue again the background messages whose task was lost (queued
    longer than QUEUED_GRACE, or given back while Claude was down) or whose worker died (its
    lease ran out); drop the kept attachments of finished messages. Returns how many were
    queued."""
    moment = now or timezone.now()
    HeldAttachment.objects.exclude(message__status__in=_WAITING).delete()
    stale = Q(status=MessageStatus.DEFERRED) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=moment)
    ) | Q(status=MessageStatus.PROCESSING, lease_until__lt=moment)
    candidates = Message.objects.filter(
        stale, direction=Direction.INBOUND, status_reason=BACKGROUND
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    queued = 0
    for pk in list(candidates):
        # Conditional, so that two sweeps (or a sweep and a claim) never both take it.
        taken = Message.objects.filter(stale, pk=pk, status_reason=BACKGROUND).update(
            status=MessageStatus.DEFERRED, lease_owner="", lease_until=moment + QUEUED_GRACE
        )
        if taken:
            background_enqueue(pk)
            queued += 1
    if queued:
        logger.info("background: queued %d answer(s) again", queued)
    return queued


def _owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _claim(message_pk: int, owner: str, now: datetime) -> _Claimed | None:
    with transaction.atomic():
        taken = Message.objects.filter(
            Q(status=MessageStatus.DEFERRED)
            | Q(status=MessageStatus.PROCESSING, lease_until__lt=now),
            pk=message_pk,
            direction=Direction.INBOUND,
            status_reason=BACKGROUND,
        ).update(status=MessageStatus.PROCESSING, lease_owner=owner, lease_until=now + LEASE)
        if not taken:
            return None
        row = Message.objects.select_related("chat", "identity").get(pk=message_pk)
        if row.identity is None:
            outcomes.message_mark(
                message_pk=message_pk, status=MessageStatus.FAILED, reason="no_sender"
            )
            return None
        stored, context = conversations.context_for_stored(row, row.identity)
        held = [
            Attachment(
                kind=item.kind,  # type: ignore[arg-type]  # stored from an AttachmentKind
                mime_type=item.mime_type,
                file_name=item.file_name,
                size=len(item.data),
                data=bytes(item.data),
            )
            for item in row.held_attachments.order_by("position")
        ]
    message = replace(stored, text=_task_text(stored.text), attachments=tuple(held))
    context = replace(context, text=_task_text(context.text))
    return _Claimed(message=message, context=context, owner=owner)


def _task_text(text: str) -> str:
    """What to answer: a ``/bg`` command's task, or the message as it was sent."""
    command = parse_command(text, "")
    return command.args.strip() if command is not None and command.name == "bg" else text


async def _answer(claimed: _Claimed, client: ClaudeAPI | None, tools: ToolsFor | None) -> str:
    # A task has an event loop of its own, so its Claude client is made and closed here.
    own = ClaudeClient() if client is None else None
    config = settings.PIPELINE
    limits = AttachmentLimits.from_settings(config)
    agent = AgentOrchestrator(
        client=client or own,  # type: ignore[arg-type]  # one of the two is set
        tools=tools if tools is not None else tools_for_message,
        limits=limits,
        prices=settings.MODEL_PRICES,
        max_tool_rounds=config["MAX_TOOL_ROUNDS"],
    )
    plan = TypeRouter(limits=limits).plan(claimed.message, claimed.context)
    plan = replace(plan, handler="agent", reason="", stream=False, background=False)
    try:
        run = asyncio.create_task(agent.run(claimed.message, claimed.context, plan))
        response = await _while_leased(run, claimed)
    finally:
        if own is not None:
            await own.aclose()
    if response is None:
        return "lost"
    if response.outcome == "unavailable":
        await sync_to_async(_give_back)(claimed)
        return "unavailable"
    recorded = await sync_to_async(_record)(claimed, response)
    return response.outcome if recorded else "lost"


async def _while_leased(
    run: asyncio.Task[AgentResponse], claimed: _Claimed
) -> AgentResponse | None:
    """Wait for the answer, renewing the lease; None (and the call stopped) once it is lost:
    cancelled by /cancel, or taken over after this worker was presumed dead."""
    while True:
        done, _ = await asyncio.wait({run}, timeout=RENEW_EVERY_SECONDS)
        if done:
            return run.result()
        if not await sync_to_async(_lease_renew)(claimed):
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            logger.info("background answer %d: lease lost, stopped", claimed.context.message_pk)
            return None


def _lease_renew(claimed: _Claimed) -> bool:
    return bool(
        Message.objects.filter(
            pk=claimed.context.message_pk,
            status=MessageStatus.PROCESSING,
            lease_owner=claimed.owner,
        ).update(lease_until=timezone.now() + LEASE)
    )


def _give_back(claimed: _Claimed) -> None:
    """Claude is unavailable: deferred again, tried by the sweep a minute later."""
    Message.objects.filter(
        pk=claimed.context.message_pk, status=MessageStatus.PROCESSING, lease_owner=claimed.owner
    ).update(
        status=MessageStatus.DEFERRED,
        lease_owner="",
        lease_until=timezone.now() + RETRY_UNAVAILABLE_AFTER,
    )


def _record(claimed: _Claimed, response: AgentResponse) -> bool:
    """Store, queue and announce the answer, once; False (nothing written) if the lease was
    lost. The first UPDATE both checks the lease and takes the row's write lock, so a /cancel
    that comes meanwhile waits for this transaction and then finds nothing to cancel."""
    reply = agent_reply(response)
    answered = reply.status == MessageStatus.ANSWERED
    message, context = claimed.message, claimed.context
    with transaction.atomic():
        held = Message.objects.filter(
            pk=context.message_pk, status=MessageStatus.PROCESSING, lease_owner=claimed.owner
        ).update(lease_owner="", lease_until=None)
        if not held:
            return False
        late_answer_record(
            message=message,
            context=context,
            reply=reply,
            response=response,
            kind=BACKGROUND,
            reason=BACKGROUND if answered else reply.reason,
            summary=("Answered in the background", "Background answer failed"),
        )
        HeldAttachment.objects.filter(message_id=context.message_pk).delete()
    return True


def _cancelled_event() -> PendingEvent:
    return PendingEvent(
        kind="message.failed",
        summary="Background answer cancelled",
        level="info",
        data={
            "status": "failed",
            "reason": "cancelled",
            "delivered": False,
            "parts": 0,
            "reply": "",
            "cost_usd": "0",
            "background": True,
        },
    )
