"""The tools Claude may call in one answer: a registry of name → spec + coroutine.

A registry is built per message for its sender (``pipeline.tools.offer.tools_for``): the
built-in tools plus those of the providers that person has connected, so Claude never sees a
tool, or a token, that is not the sender's. A tool returns text for Claude (or a
``ToolOutput`` when it proposed a change that waits for the person); ``ToolInputError`` and
``ToolFailed`` become ``is_error`` results with their message, any other exception an
``is_error`` result that names only its type, so one failing tool never fails the reply.
Every result is cut to ``RESULT_LIMIT`` characters, and says so when it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from pipeline.types import (
    MessageContext,
    ToolCallRecord,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)

logger = logging.getLogger(__name__)

# Enough for a page of issues or events; more would cost tokens on every later round.
RESULT_LIMIT = 8000


class ToolInputError(ValueError):
    """The input Claude gave a tool is unusable; the message goes back to Claude."""


class ToolFailed(Exception):
    """The tool ran and the service said no (or could not be reached); the message, written
    for Claude to explain to the person, goes back as an ``is_error`` result."""


@dataclass(frozen=True)
class ToolOutput:
    """A tool's result when it did more than answer: ``pending_action_id`` is the change it
    proposed (stored, not yet done) and ``confirm_prompt`` the question the person is asked."""

    text: str
    pending_action_id: int | None = None
    confirm_prompt: str = ""


ToolFunction = Callable[[Mapping[str, object]], Awaitable[str | ToolOutput]]


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: ToolFunction


def trim(text: str, limit: int = RESULT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with a note saying how much was left out (so
    Claude knows the list is incomplete rather than that this is all there is)."""
    if len(text) <= limit:
        return text
    note = f"\n…[trimmed: the first {{kept}} of {len(text)} characters are shown]"
    kept = max(0, limit - len(note.format(kept=limit)))
    return text[:kept] + note.format(kept=kept)


class ToolRegistry:
    """The tools of one answer. ``guidance`` is a paragraph for the system prompt about them
    (what the person has connected, what waits for confirmation); "" adds nothing."""

    def __init__(self, tools: Iterable[Tool] = (), *, guidance: str = "") -> None:
        self._tools: dict[str, Tool] = {}
        self.guidance = guidance
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.spec.name in self._tools:
            raise ValueError(f"A tool named {tool.spec.name!r} is already registered.")
        self._tools[tool.spec.name] = tool

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self._tools.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    async def call(self, use: ToolUseBlock) -> tuple[ToolResultBlock, ToolCallRecord]:
        """Run one tool call; unknown tools and failures come back as error results."""
        started = time.perf_counter()
        tool = self._tools.get(use.name)
        output = ToolOutput(text="")
        is_error = True
        try:
            if tool is None:
                raise ToolInputError(f"There is no tool named {use.name!r}.")
            result = await tool.run(use.input)
            output = result if isinstance(result, ToolOutput) else ToolOutput(text=result)
            is_error = False
        except (ToolInputError, ToolFailed) as error:
            output = ToolOutput(text=str(error))
        except Exception as error:
            logger.warning("tool %s failed: %s", use.name, type(error).__name__)
            output = ToolOutput(text=f"The tool failed ({type(error).__name__}).")
        record = ToolCallRecord(
            name=use.name,
            ok=not is_error,
            latency_ms=(time.perf_counter() - started) * 1000,
            pending_action_id=output.pending_action_id,
            confirm_prompt=output.confirm_prompt,
        )
        block = ToolResultBlock(tool_use_id=use.id, content=trim(output.text), is_error=is_error)
        return block, record


# Where an answer's tools come from: called once per message with its context.
ToolsFor = Callable[[MessageContext], Awaitable[ToolRegistry]]


def fixed_tools(registry: ToolRegistry) -> ToolsFor:
    """A per-message tool source that always answers ``registry`` (tests, benchmarks)."""

    async def tools(context: MessageContext) -> ToolRegistry:
        return registry

    return tools
