"""Google Calendar tools, on the person's primary calendar with their own token
(``aisystem.integrations.google.CalendarApi``).

Listing events runs when Claude calls it; creating one is a ``WriteTool`` that waits for
the person's confirmation. Times go both ways as ISO 8601 with a UTC offset: an event
created from a time without one would land wherever the server's clock is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from aisystem.integrations.google import CalendarApi
from pipeline.tools.actions import Proposal, ProviderTools, ReadTool, WriteTool
from pipeline.tools.inputs import (
    compact,
    datetime_arg,
    int_arg,
    one_line,
    optional_datetime_arg,
    shorten,
    text_arg,
)
from pipeline.tools.registry import ToolInputError
from pipeline.types import ToolSpec

_TIME_DESCRIPTION = "ISO 8601 with a UTC offset, e.g. 2025-03-01T10:00:00+01:00."


def _when(moment: Mapping[str, Any] | None) -> str | None:
    """An event's start or end: a date-time, or a date for an all-day event."""
    if not moment:
        return None
    value = moment.get("dateTime") or moment.get("date")
    return str(value) if value else None


def _list_events(account_id: int, arguments: Mapping[str, object]) -> str:
    time_min = optional_datetime_arg(arguments, "time_min") or timezone.now()
    time_max = optional_datetime_arg(arguments, "time_max")
    if time_max is not None and time_max <= time_min:
        raise ToolInputError("time_max must be after time_min.")
    max_results = int_arg(arguments, "max_results", default=10, maximum=50)
    events = CalendarApi(account_id).list_events(
        time_min=time_min, time_max=time_max, max_results=max_results
    )
    if not events:
        return "No events in that period."
    return compact(
        [
            {
                "summary": event.get("summary") or "(no title)",
                "start": _when(event.get("start")),
                "end": _when(event.get("end")),
                "location": shorten(event.get("location") or "", 200) or None,
                "htmlLink": event.get("htmlLink"),
            }
            for event in events
        ]
    )


def _prepare_event(arguments: Mapping[str, object]) -> Proposal:
    summary = text_arg(arguments, "summary", max_length=1024, one_line=True)
    start = datetime_arg(arguments, "start")
    end = datetime_arg(arguments, "end")
    if end <= start:
        raise ToolInputError("end must be after start.")
    description = text_arg(arguments, "description", required=False, max_length=8000)
    span = f"{start.isoformat(' ', 'minutes')} to {end.isoformat(' ', 'minutes')}"
    return Proposal(
        arguments={
            "summary": summary,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "description": description,
        },
        summary=f"Create calendar event “{one_line(summary, 200)}” from {span}",
    )


def _create_event(account_id: int, arguments: Mapping[str, object]) -> str:
    summary = str(arguments["summary"])
    event = CalendarApi(account_id).create_event(
        summary=summary,
        start=datetime.fromisoformat(str(arguments["start"])),
        end=datetime.fromisoformat(str(arguments["end"])),
        description=str(arguments.get("description") or ""),
    )
    return f"Created the event “{one_line(summary, 200)}”: {event.get('htmlLink') or ''}"


LIST_EVENTS = ReadTool(
    spec=ToolSpec(
        name="google_calendar_list_events",
        description=(
            "List events on the person's primary Google Calendar, soonest first: title, "
            "start, end, location and link. Without time_min, from now on."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "time_min": {"type": "string", "description": f"From. {_TIME_DESCRIPTION}"},
                "time_max": {"type": "string", "description": f"Until. {_TIME_DESCRIPTION}"},
                "max_results": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 50,
                    "description": "How many (default 10).",
                },
            },
        },
    ),
    run=_list_events,
)

CREATE_EVENT = WriteTool(
    spec=ToolSpec(
        name="google_calendar_create_event",
        description=(
            "Add an event to the person's primary Google Calendar. It is not created at "
            "once: the person is asked to confirm first, so call it once, with the final "
            "details. Ask for the time zone if you do not know it."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "summary": {"type": "string", "description": "The event's title."},
                "start": {"type": "string", "description": _TIME_DESCRIPTION},
                "end": {"type": "string", "description": _TIME_DESCRIPTION},
                "description": {"type": "string", "description": "Optional details."},
            },
            "required": ["summary", "start", "end"],
        },
    ),
    prepare=_prepare_event,
    execute=_create_event,
)

TOOLS = ProviderTools(
    provider="google",
    label="Google",
    reads=(LIST_EVENTS,),
    writes=(CREATE_EVENT,),
    guidance="the google_calendar_* tools read and add to their Google Calendar",
)
