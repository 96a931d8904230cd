"""The pipeline's sequencer: ``UnifiedMessageProcessor.process_message(message, transport)``.

Steps decide; this module does the I/O around them, in as few database round trips as it
can (one before the model call, one after), because the model's latency should be the only
latency a user notices:

1+2. ``admission.admit`` (worker thread): the security gate and the context builder;
3.   ``TypeRouter.plan`` (pure, on the event loop);
4.   a command, an "unsupported" answer, or the agent (the Claude call, streamed);
5.   the response manager delivers through the transport; ``outcomes.message_finish``
     (worker thread) stores the outcome, the events and the log rows of the message's
     successful Claude calls (collected with ``claude_store.calls_collect`` rather than
     written in a transaction of their own each).

The agent's tools are built per message for its sender (``tools_for_message``) unless a
fixed registry is given. An answer that proposed a change carries its id out as
``ProcessingResult.pending_action_id`` (with ``reply_message_ids``) for a transport's
Confirm/Cancel buttons.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from aisystem.events import PendingEvent
from aisystem.models import MessageKind, MessageStatus
from pipeline import admission, background, outcomes
from pipeline.agent import AgentOrchestrator, ChatTasks, ClaudeAPI, TextCallback
from pipeline.agent_request import AttachmentLimits
from pipeline.claude import store as claude_store
from pipeline.claude.client import ClaudeClient
from pipeline.command_executor import (
    PROVIDER_COMMANDS,
    CommandOutcome,
    command_execute,
    command_execute_closing_connections,
)
from pipeline.replies import (
    Reply,
    agent_reply,
    result_status,
    retry_at,
    with_delivery,
)
from pipeline.response_manager import (
    REACTION_DONE,
    REACTION_RECEIVED,
    REACTION_THINKING,
    ResponseManager,
    answer_key,
    final_reaction,
)
from pipeline.security_gate import SecurityGate
from pipeline.step_events import agent_event, done_event, route_event
from pipeline.tools import ToolRegistry, tools_for_message
from pipeline.type_router import TypeRouter, unsupported_reply
from pipeline.types import (
    AgentResponse,
    DeliveryResult,
    InboundMessage,
    MessageContext,
    OutboundMedia,
    ProcessingPlan,
    ProcessingResult,
    ProcessingStatus,
    Transport,
)

NOTHING_TO_STOP = "There's nothing to stop."
DOCUMENT_FAILED = "I couldn't send you the file just now. Please try again in a while."

logger = logging.getLogger(__name__)

# The worker-thread entry points, wrapped once rather than once per message.
_admit = sync_to_async(admission.admit)
_message_finish = sync_to_async(outcomes.message_finish)
_calls_record = sync_to_async(claude_store.calls_record)
_background_hold = sync_to_async(background.background_hold)
_background_enqueue = sync_to_async(background.background_enqueue)
_command_execute = sync_to_async(command_execute)
# Commands that call a provider (/confirm runs the write, /disconnect revokes) run in a thread
# of their own, so a slow provider does not hold up the one every other ORM call shares.
_command_execute_unshared = sync_to_async(
    command_execute_closing_connections, thread_sensitive=False
)


@dataclass
class _Journey:
    """One message's mutable bookkeeping while it is processed."""

    started: float
    timings: dict[str, float]
    calls: list[claude_store.LoggedCall]  # Claude calls to log with the outcome
    events: list[PendingEvent] = field(default_factory=list)

    def lap(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[step] = round((now - since) * 1000, 3)
        return now


class UnifiedMessageProcessor:
    """Runs every message of every transport through the five steps. One per process."""

    def __init__(
        self,
        *,
        client: ClaudeAPI | None = None,
        tools: ToolRegistry | None = None,
        responses: ResponseManager | None = None,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        config = settings.PIPELINE
        self.gate = SecurityGate(
            stale_after_seconds=config["STALE_AFTER_SECONDS"],
            max_input_chars=config["MAX_INPUT_CHARS"],
        )
        limits = AttachmentLimits.from_settings(config)
        self.router = TypeRouter(limits=limits)
        self.agent = AgentOrchestrator(
            client=client or ClaudeClient(),
            tools=tools if tools is not None else tools_for_message,
            limits=limits,
            prices=settings.MODEL_PRICES,
            max_tool_rounds=config["MAX_TOOL_ROUNDS"],
        )
        self.responses = responses or ResponseManager()
        self.chat_tasks = ChatTasks()
        self.clock = clock

    def cancel_chat(self, transport: str, chat_id: str) -> int:
        """Stop the chat's in-flight answers in this process; returns how many."""
        return self.chat_tasks.cancel(f"{transport}:{chat_id}")

    async def process_message(
        self, message: InboundMessage, transport: Transport
    ) -> ProcessingResult:
        with claude_store.calls_collect() as calls:
            journey = _Journey(started=time.perf_counter(), timings={}, calls=calls)
            try:
                return await self._process(message, transport, journey)
            finally:
                if calls:  # cut short before the outcome was recorded: log the calls now
                    await _calls_flush(calls)

    async def _process(
        self, message: InboundMessage, transport: Transport, journey: _Journey
    ) -> ProcessingResult:
        admission = await _admit(message, gate=self.gate, now=self.clock())
        journey.timings.update(admission.timings_ms)
        decision = admission.decision
        if decision.ignored:
            return self._result(journey, status="ignored", reason=decision.reason)
        if not decision.allowed or admission.context is None:
            return await self._reject(message, transport, admission.notice, journey, admission)
        context = admission.context
        since = time.perf_counter()
        plan = self.router.plan(message, context)
        journey.lap("route", since)
        journey.events.append(route_event(plan))
        reply = await self._handle(message, transport, context, plan, journey)
        result = await self._finish(message, context, reply, journey)
        if reply.reason == background.BACKGROUND:  # queued once its outcome is recorded
            await _background_enqueue(context.message_pk)
        return result

    async def _reject(
        self,
        message: InboundMessage,
        transport: Transport,
        notice: str,
        journey: _Journey,
        admission: admission.Admission,
    ) -> ProcessingResult:
        if notice:
            await self.responses.deliver(
                transport, message.chat_id, notice, reply_to=message.message_id
            )
        return self._result(
            journey,
            status="rejected",
            reason=admission.decision.reason,
            reply=notice,
            message_id=admission.message_pk,
        )

    async def _handle(
        self,
        message: InboundMessage,
        transport: Transport,
        context: MessageContext,
        plan: ProcessingPlan,
        journey: _Journey,
    ) -> Reply:
        if plan.handler == "ignore":
            return Reply(text="", status=MessageStatus.IGNORED, reason=plan.reason)
        if plan.handler == "command":
            return await self._command(message, transport, context, plan, journey)
        if plan.handler == "unsupported":
            reply = Reply(
                text=unsupported_reply(plan.reason),
                status=MessageStatus.ANSWERED,
                reason=plan.reason,
            )
        elif plan.background:  # the agent, in a django-q2 task (pipeline.background)
            await _background_hold(
                message_pk=context.message_pk, attachments=message.attachments, now=self.clock()
            )
            reply = Reply(background.WORKING_ON_IT, MessageStatus.DEFERRED, background.BACKGROUND)
        else:
            return await self._answer(message, transport, context, plan, journey)
        since = time.perf_counter()
        delivery = await self.responses.deliver(
            transport, message.chat_id, reply.text, reply_to=message.message_id
        )
        journey.lap("delivery", since)
        if reply.reason == background.BACKGROUND:  # waits for its task whatever the notice did
            return replace(
                with_delivery(reply, delivery),
                status=MessageStatus.DEFERRED,
                reason=background.BACKGROUND,
            )
        return with_delivery(reply, delivery)

    async def _command(
        self,
        message: InboundMessage,
        transport: Transport,
        context: MessageContext,
        plan: ProcessingPlan,
        journey: _Journey,
    ) -> Reply:
        """Run the command and deliver its reply, then its file if it has one (/export)."""
        since = time.perf_counter()
        execute = (
            _command_execute_unshared if plan.command in PROVIDER_COMMANDS else _command_execute
        )
        outcome: CommandOutcome = await execute(
            name=plan.command, args=plan.command_args, context=context
        )
        text = outcome.reply
        if outcome.cancel_requested:  # the reply says what pending change it cancelled, if any
            stopped = self.cancel_chat(message.transport, message.chat_id)
            said = ["Stopped." if stopped else "", outcome.reply]
            text = "\n\n".join(part for part in said if part) or NOTHING_TO_STOP
        journey.lap("command", since)
        # A command asking for a confirmation (/forget) carries it as an answer proposing a
        # change does, so the transport offers its Confirm/Cancel buttons.
        asks = outcome.pending_action_id
        reply = Reply(
            text=text,
            status=MessageStatus.ANSWERED,
            reason=f"/{plan.command}",
            kind=MessageKind.COMMAND,
            agent=AgentResponse(outcome="ok", pending_action_id=asks) if asks else None,
        )
        since = time.perf_counter()
        delivery = await self.responses.deliver(
            transport, message.chat_id, reply.text, reply_to=message.message_id
        )
        if outcome.document is not None and delivery.delivered:
            delivery = await self._send_document(transport, message, outcome.document, delivery)
        journey.lap("delivery", since)
        return with_delivery(reply, delivery)

    async def _send_document(
        self,
        transport: Transport,
        message: InboundMessage,
        document: OutboundMedia,
        delivery: DeliveryResult,
    ) -> DeliveryResult:
        """Send a command's file after its reply; when the transport refuses it, say so."""
        try:
            sent = await transport.send_media(
                message.chat_id, document, reply_to=message.message_id
            )
        except Exception as error:
            logger.warning("sending a %s file failed: %s", transport.name, type(error).__name__)
            notice = await self.responses.deliver(transport, message.chat_id, DOCUMENT_FAILED)
            sent_ids = notice.transport_message_ids
        else:
            sent_ids = (sent,)
        return replace(delivery, transport_message_ids=delivery.transport_message_ids + sent_ids)

    async def _answer(
        self,
        message: InboundMessage,
        transport: Transport,
        context: MessageContext,
        plan: ProcessingPlan,
        journey: _Journey,
    ) -> Reply:
        reactions = context.status_reactions
        chat_id, message_id = message.chat_id, message.message_id
        streaming = self.responses.stream(
            transport, chat_id, reply_to=message_id, key=answer_key(context.message_pk)
        )
        # A resumed message (catch-up) may have been answered, or begun, before a stop or crash.
        earlier = await streaming.resume() if message.is_catch_up else None
        if earlier is not None:
            if reactions:
                await self.responses.react(transport, chat_id, message_id, REACTION_DONE)
            reply = Reply(earlier.text, MessageStatus.ANSWERED)
            return with_delivery(reply, earlier.delivery)
        if reactions:
            await self.responses.react(transport, chat_id, message_id, REACTION_RECEIVED)
        typing = self.responses.keep_typing(transport, chat_id)
        shown = {"text": ""}
        streams = plan.stream and transport.streams

        async def on_text(accumulated: str) -> None:
            first, on_screen = not shown["text"], bool(streaming.message_ids)
            if first:
                typing.cancel()
            shown["text"] = accumulated
            if plan.stream:
                await streaming.update(accumulated)
            # 🤔 once the answer starts to show (a short one shows only whole, with 👍).
            thinking = bool(streaming.message_ids) and not on_screen if streams else first
            if reactions and thinking:
                await self.responses.react(transport, chat_id, message_id, REACTION_THINKING)

        since = time.perf_counter()
        try:
            response = await self._run_agent(message, context, plan, on_text, partial=shown)
        finally:
            typing.cancel()
        journey.lap("agent", since)
        journey.events.append(agent_event(response))
        reply = agent_reply(response)
        since = time.perf_counter()
        delivery = await streaming.finish(reply.text, final=reply.status == MessageStatus.ANSWERED)
        journey.lap("delivery", since)
        if reactions:  # 🕒, not ❌, for an answer rescheduled: the outbox sets 👍 when it lands
            reaction = final_reaction(reply.status, delivery)
            await self.responses.react(transport, chat_id, message_id, reaction)
        return with_delivery(reply, delivery)

    async def _run_agent(
        self,
        message: InboundMessage,
        context: MessageContext,
        plan: ProcessingPlan,
        on_text: TextCallback,
        *,
        partial: dict[str, str],
    ) -> AgentResponse:
        """The agent in its own task, so /cancel can stop it without stopping us. A
        cancellation of this coroutine itself (shutdown, a closed client) propagates."""
        task = asyncio.create_task(self.agent.run(message, context, plan, on_text=on_text))
        self.chat_tasks.add(f"{message.transport}:{message.chat_id}", task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                task.cancel()
                raise
            return AgentResponse(outcome="cancelled", text=partial["text"])

    async def _finish(
        self, message: InboundMessage, context: MessageContext, reply: Reply, journey: _Journey
    ) -> ProcessingResult:
        agent = reply.agent or AgentResponse(outcome="ok")
        delivery = reply.delivery
        journey.timings["total"] = round((time.perf_counter() - journey.started) * 1000, 3)
        journey.events.append(
            done_event(
                status=reply.status,
                reason=reply.reason,
                reply=reply.text,
                delivery=delivery,
                timings=journey.timings,
                cost_usd=agent.cost_usd,
            )
        )
        outcome = outcomes.Outcome(
            message_pk=context.message_pk,
            chat_pk=context.chat_pk,
            identity_pk=context.identity_id,
            conversation_id=context.conversation_id,
            transport=message.transport,
            status=reply.status,
            reason=reply.reason,
            reply=reply.text,
            reply_kind=reply.kind,
            reply_ids=delivery.transport_message_ids if delivery else (),
            delivered=delivery.delivered if delivery else False,
            retry_at=retry_at(delivery, self.clock()),
            reply_to_message_id=message.message_id,
            model=agent.model,
            input_tokens=agent.input_tokens,
            output_tokens=agent.output_tokens,
            cost_usd=agent.cost_usd,
            latency_ms=int(journey.timings["total"]),
        )
        since = time.perf_counter()
        await _message_finish(outcome, events=journey.events, now=self.clock(), calls=journey.calls)
        journey.calls.clear()  # recorded with the outcome
        journey.lap("record", since)
        # The stored latency is the user's wait (up to delivery); "total" adds the recording.
        journey.timings["total"] = round((time.perf_counter() - journey.started) * 1000, 3)
        return self._result(
            journey,
            status=result_status(reply.status),
            reason=reply.reason,
            reply=reply.text,
            message_id=context.message_pk,
            agent=agent,
            reply_message_ids=delivery.transport_message_ids if delivery else (),
        )

    @staticmethod
    def _result(
        journey: _Journey,
        *,
        status: ProcessingStatus,
        reason: str = "",
        reply: str = "",
        message_id: int | None = None,
        agent: AgentResponse | None = None,
        reply_message_ids: tuple[str, ...] = (),
    ) -> ProcessingResult:
        journey.timings.setdefault(
            "total", round((time.perf_counter() - journey.started) * 1000, 3)
        )
        return ProcessingResult(
            status=status,
            reply=reply,
            message_id=message_id,
            reason=reason,
            timings_ms=dict(journey.timings),
            input_tokens=agent.input_tokens if agent else 0,
            output_tokens=agent.output_tokens if agent else 0,
            cost_usd=agent.cost_usd if agent else Decimal(0),
            pending_action_id=agent.pending_action_id if agent else None,
            reply_message_ids=reply_message_ids,
        )


async def _calls_flush(calls: list[claude_store.LoggedCall]) -> None:
    """Write the log rows of Claude calls whose message was not recorded (an error or a
    cancellation cut it short). Shielded, so a cancellation does not lose them; a failure is
    logged, not raised, so that it does not hide what cut the message short."""
    try:
        await asyncio.shield(_calls_record(list(calls)))
    except Exception:
        logger.warning("could not log %d Claude call(s)", len(calls), exc_info=True)


_PROCESSORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UnifiedMessageProcessor] = (
    weakref.WeakKeyDictionary()
)


def shared_processor() -> UnifiedMessageProcessor:
    """The processor of the running event loop (its HTTP clients belong to that loop)."""
    loop = asyncio.get_running_loop()
    processor = _PROCESSORS.get(loop)
    if processor is None:
        processor = _PROCESSORS[loop] = UnifiedMessageProcessor()
    return processor
