"""The built-in tools: every conversation has them, no account needed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.tools.registry import Tool, ToolInputError, ToolRegistry
from pipeline.types import ToolSpec


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

BUILTIN_TOOLS: tuple[Tool, ...] = (CURRENT_TIME,)


def default_registry() -> ToolRegistry:
    """The built-in tools every conversation has (a fresh registry each call)."""
    return ToolRegistry(BUILTIN_TOOLS)
