"""The tools Claude may call: a registry of name → spec + coroutine.

Integrations register their tools here (a connected account's tools are added per request
by the orchestrator's caller); the built-in ones need no account. A tool returns text for
Claude; an exception becomes an ``is_error`` result with a short message, so one failing
tool never fails the whole reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.types import ToolCallRecord, ToolResultBlock, ToolSpec, ToolUseBlock

logger = logging.getLogger(__name__)

ToolFunction = Callable[[Mapping[str, object]], Awaitable[str]]


class ToolInputError(ValueError):
    """The input Claude gave a tool is unusable; the message goes back to Claude."""


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: ToolFunction


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.spec.name in self._tools:
            raise ValueError(f"A tool named {tool.spec.name!r} is already registered.")
        self._tools[tool.spec.name] = tool

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self._tools.values())

    async def call(self, use: ToolUseBlock) -> tuple[ToolResultBlock, ToolCallRecord]:
        """Run one tool call; unknown tools and failures come back as error results."""
        started = time.perf_counter()
        tool = self._tools.get(use.name)
        try:
            if tool is None:
                raise ToolInputError(f"There is no tool named {use.name!r}.")
            content, is_error = await tool.run(use.input), False
        except ToolInputError as error:
            content, is_error = str(error), True
        except Exception as error:
            logger.warning("tool %s failed: %s", use.name, type(error).__name__)
            content, is_error = f"The tool failed ({type(error).__name__}).", True
        record = ToolCallRecord(
            name=use.name, ok=not is_error, latency_ms=(time.perf_counter() - started) * 1000
        )
        return ToolResultBlock(tool_use_id=use.id, content=content, is_error=is_error), record


async def _current_time(arguments: Mapping[str, object]) -> str:
    name = str(arguments.get("timezone") or "UTC")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolInputError(f"Unknown time zone {name!r}; use an IANA name.") from None
    return datetime.now(zone).strftime(f"%A %d %B %Y, %H:%M:%S ({name}, UTC%z)")


CURRENT_TIME = Tool(
    spec=ToolSpec(
        name="get_current_time",
        description="The current date and time, in an IANA time zone (default UTC).",
        input_schema={
            "type": "object",
            "properties": {
                "timezone": {"type": "string", "description": "For example Europe/Paris."}
            },
        },
    ),
    run=_current_time,
)


def default_registry() -> ToolRegistry:
    """The built-in tools every conversation has."""
    return ToolRegistry([CURRENT_TIME])
