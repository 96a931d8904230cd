"""Step 4, the agent orchestrator: the Claude call, the tool-use loop and cancellation.

The request is built by ``agent_request.build_request`` (system prompt, history, images,
PDFs, inlined text files); the client streams, and the accumulated text of the whole reply
(every round of the tool loop) goes to ``on_text`` as it arrives. The loop is bounded by
``max_tool_rounds``: past it, the answer so far is returned with a note.

The tools are the sender's: ``tools`` is either a fixed registry (tests, benchmarks) or a
per-message source (``pipeline.tools.tools_for_message``) that offers each person only the
integrations they connected; its guidance paragraph is appended to the system prompt.

A write proposed in a round (``ToolCallRecord.pending_action_id``) ends the tool use: the
round's later tool calls are answered "not run", Claude gets one more call to tell the person
what it proposed, and whatever it asks for then is not run. The pipeline itself, not Claude,
ends the answer with the confirmation question, so the person always reads exactly what
would happen; if that last call fails the answer is still the question (the change is
stored, and deferring the message would propose it twice).

``ChatTasks`` is how ``/cancel`` (and a Stop button) reach a chat's in-flight request in
this process: the processor registers the agent task under the chat, and cancelling it
closes the stream. It is per process by design: a chat's messages are handled by one
process at a time (the bridge owns its Telegram account; an API or browser request lives
in the web process that received it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Protocol

from aisystem.errors import IntegrationError
from pipeline.agent_request import AttachmentLimits, build_request
from pipeline.claude.pricing import PricePair, cost_usd
from pipeline.tools import ToolRegistry, ToolsFor, fixed_tools
from pipeline.types import (
    AgentOutcome,
    AgentResponse,
    ChatTurn,
    ClaudeReply,
    ClaudeRequest,
    InboundMessage,
    MessageContext,
    ProcessingPlan,
    ToolCallRecord,
    ToolResultBlock,
)

logger = logging.getLogger(__name__)

TextCallback = Callable[[str], Awaitable[None]]
TOOL_LIMIT_NOTE = "_(I stopped here: this answer needed more tool calls than I'm allowed.)_"
NOT_RUN = "Not run: a change is waiting for the person's confirmation, so nothing else runs now."


class ClaudeAPI(Protocol):
    async def create(
        self, request: ClaudeRequest, *, on_text: TextCallback | None = None
    ) -> ClaudeReply: ...


class ChatTasks:
    """The in-flight agent tasks of each chat in this process."""

    def __init__(self) -> None:
        self._tasks: dict[str, set[asyncio.Task[AgentResponse]]] = defaultdict(set)

    def add(self, chat_key: str, task: asyncio.Task[AgentResponse]) -> None:
        self._tasks[chat_key].add(task)
        task.add_done_callback(lambda done: self._discard(chat_key, done))

    def _discard(self, chat_key: str, task: asyncio.Task[AgentResponse]) -> None:
        tasks = self._tasks.get(chat_key)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._tasks[chat_key]

    def cancel(self, chat_key: str) -> int:
        """Cancel the chat's in-flight requests; returns how many there were."""
        tasks = [task for task in self._tasks.get(chat_key, ()) if not task.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)


class AgentOrchestrator:
    def __init__(
        self,
        *,
        client: ClaudeAPI,
        tools: ToolRegistry | ToolsFor,
        limits: AttachmentLimits,
        prices: Mapping[str, PricePair],
        max_tool_rounds: int = 5,
    ) -> None:
        self.client = client
        self.tools_for: ToolsFor = fixed_tools(tools) if isinstance(tools, ToolRegistry) else tools
        self.limits = limits
        self.prices = prices
        self.max_tool_rounds = max_tool_rounds

    async def run(
        self,
        message: InboundMessage,
        context: MessageContext,
        plan: ProcessingPlan,
        *,
        on_text: TextCallback | None = None,
    ) -> AgentResponse:
        """Answer the message. Never raises for Claude's failures: the outcome says what
        happened (see ``_failure_outcome``: ``unavailable`` → defer, ``failed`` → the request
        can never succeed). Cancellation propagates (``asyncio.CancelledError``); the caller
        decides what it meant."""
        tools = await self.tools_for(context)
        built = build_request(message, context, plan, limits=self.limits, tools=tools.specs())
        request = built.request
        if tools.guidance:
            system = f"{request.system}\n\n{tools.guidance}" if request.system else tools.guidance
            request = replace(request, system=system)
        run = _Run(self, tools, on_text, notes=built.notes)
        try:
            return await run.loop(request)
        except IntegrationError as error:
            outcome = _failure_outcome(error, proposed=run.proposed is not None)
            logger.warning("claude call failed (%s): %s", outcome, error.details)
            return run.response(outcome, error=str(error))


def _failure_outcome(error: IntegrationError, *, proposed: bool) -> AgentOutcome:
    """What a failed Claude call means for the message.

    * A change was already proposed: "ok", the answer is the confirmation question (the change
      is stored; deferring would propose it twice).
    * The request itself was refused (``permanent``: 400 invalid request, 404 model, 413 too
      large): "failed" at once, since sending it again would fail again.
    * Anything else is the service's side, which time fixes: ``ClaudeUnavailable`` (breaker
      open or probing, no usable key) and the client giving up after its retries (529
      overloaded, 5xx, timeouts, connection errors, broken streams). "unavailable": the
      message is deferred and answered on recovery by ``pipeline.deferred``. Rate limits and
      refused keys never get here by themselves: the client rotates keys and, once none is
      left, raises ``ClaudeUnavailable``.
    """
    if proposed:
        return "ok"
    if error.permanent:  # never a ClaudeUnavailable: that one is always worth retrying
        return "failed"
    return "unavailable"


class _Run:
    """One answer's state across the rounds of the tool loop."""

    def __init__(
        self,
        agent: AgentOrchestrator,
        tools: ToolRegistry,
        on_text: TextCallback | None,
        *,
        notes: tuple[str, ...],
    ) -> None:
        self.agent = agent
        self.tools = tools
        self.on_text = on_text
        self.notes = notes
        self.started = time.perf_counter()
        self.first_text_ms: float | None = None
        self.texts: list[str] = []
        self.tool_calls: list[ToolCallRecord] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.model = ""
        self.stop_reason = ""
        self.proposed: ToolCallRecord | None = None  # the write waiting for the person

    async def loop(self, request: ClaudeRequest) -> AgentResponse:
        for tool_round in range(self.agent.max_tool_rounds + 1):
            reply = await self.agent.client.create(request, on_text=self._streamed)
            self._count(reply)
            if reply.stop_reason != "tool_use" or not reply.tool_uses or self.proposed:
                return self.response("ok")
            if tool_round == self.agent.max_tool_rounds:
                break
            request = await self._with_tool_results(request, reply)
        self.texts.append(TOOL_LIMIT_NOTE)
        return self.response("ok")

    async def _streamed(self, accumulated: str) -> None:
        if self.first_text_ms is None and accumulated:
            self.first_text_ms = (time.perf_counter() - self.started) * 1000
        if self.on_text is not None:
            await self.on_text(self._joined([*self.texts, accumulated]))

    def _count(self, reply: ClaudeReply) -> None:
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.model = reply.model
        self.stop_reason = reply.stop_reason
        if reply.text.strip():
            self.texts.append(reply.text.strip())

    async def _with_tool_results(self, request: ClaudeRequest, reply: ClaudeReply) -> ClaudeRequest:
        results = []
        for use in reply.tool_uses:
            if self.proposed is not None:  # every tool_use needs its result, even unrun
                results.append(ToolResultBlock(tool_use_id=use.id, content=NOT_RUN, is_error=True))
                continue
            result, record = await self.tools.call(use)
            results.append(result)
            self.tool_calls.append(record)
            if record.pending_action_id is not None:
                self.proposed = record
        turns = (ChatTurn("assistant", reply.content), ChatTurn("user", tuple(results)))
        return replace(request, messages=request.messages + turns)

    @staticmethod
    def _joined(texts: list[str]) -> str:
        return "\n\n".join(text for text in texts if text)

    def response(self, outcome: AgentOutcome, *, error: str = "") -> AgentResponse:
        question = [self.proposed.confirm_prompt] if self.proposed else []
        text = self._joined([*self.notes, *self.texts, *question]) if outcome == "ok" else ""
        return AgentResponse(
            outcome=outcome,
            text=text,
            model=self.model,
            stop_reason=self.stop_reason,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self._cost(),
            tool_calls=tuple(self.tool_calls),
            first_text_ms=self.first_text_ms,
            error=error,
            pending_action_id=self.proposed.pending_action_id if self.proposed else None,
        )

    def _cost(self) -> Decimal:
        if not self.model:
            return Decimal(0)
        return cost_usd(self.model, self.input_tokens, self.output_tokens, self.agent.prices)
