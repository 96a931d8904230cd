"""Reading ``/remind`` arguments: pure, plain strings and a clock in, a request out.

* ``in 10m <text>`` (also ``in 1h30m``, ``in 2 hours``, ``in 3 days and 4h``);
* ``at 2026-12-24 09:00 <text>`` (also ``at 09:00`` for the next 09:00, ``at tomorrow 9:30``);
* ``every weekday 08:00 <prompt>`` (``day``, ``weekday``, ``weekend``, ``monday``…, ``mon``…;
  an ``at`` before the time is allowed).

Times are 24-hour, on the person's wall clock (``zone``). Anything else raises
``ReminderError`` with the usage, whose examples are times that work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aisystem.services.reminders import (
    Recurrence,
    ReminderError,
    clock_parse,
    local_moment,
)

MAX_DELAY = timedelta(days=366 * 5)
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_UNIT_WORDS = r"weeks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s"  # longest first
_PIECE = rf"(\d{{1,6}})\s*({_UNIT_WORDS})(?=\d|\s|,|$)"
_DURATION_RE = re.compile(rf"(?:{_PIECE}\s*,?\s*(?:and\s+)?)+", re.IGNORECASE)
_PIECE_RE = re.compile(_PIECE, re.IGNORECASE)
_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


@dataclass(frozen=True)
class RemindRequest:
    """A one-off at ``due_at`` (aware) or a recurring prompt on ``recurrence``."""

    text: str
    due_at: datetime | None = None
    recurrence: Recurrence | None = None


def usage(now: datetime, zone: ZoneInfo) -> str:
    """What works, with an example date that is in the future."""
    example = (now.astimezone(zone) + timedelta(days=20)).date()
    return (
        "These work:\n"
        "/remind in 10m stretch\n"
        f"/remind at {example:%Y-%m-%d} 09:00 call Mum\n"
        "/remind every weekday 08:00 give me my morning briefing\n"
        f"Times are 24-hour, in your time zone ({zone.key}); change it with /timezone."
    )


def remind_parse(args: str, *, now: datetime, zone: ZoneInfo) -> RemindRequest:
    """Read ``/remind``'s arguments. Raises ReminderError (with the usage) when they say no
    time this understands, or no text."""
    how, _, rest = args.strip().partition(" ")
    how = how.lower()
    try:
        if how == "in":
            request = _parse_in(rest.strip(), now)
        elif how == "at" or how == "on":
            request = _parse_at(rest.strip(), now, zone)
        elif how == "every":
            request = _parse_every(rest.strip())
        else:
            raise ReminderError("Start with `in`, `at` or `every`.")
    except ReminderError as error:
        raise ReminderError(f"{error}\n\n{usage(now, zone)}") from None
    if not request.text:
        raise ReminderError(f"Say what to remind you of after the time.\n\n{usage(now, zone)}")
    return request


def delay_parse(text: str) -> tuple[timedelta, str]:
    """The duration ``text`` starts with ("1h30m", "2 hours and 5 min") and the rest."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ReminderError(f"`{text[:20]}` is not a duration: write it like 10m, 2h or 3d.")
    total = timedelta()
    for amount, unit in _PIECE_RE.findall(match.group(0)):
        total += int(amount) * _UNITS[unit[0].lower()]
    if total <= timedelta():
        raise ReminderError("The time must be later than now.")
    if total > MAX_DELAY:
        raise ReminderError("That is too far ahead: at most five years.")
    return total, text[match.end() :].strip()


def _parse_in(rest: str, now: datetime) -> RemindRequest:
    delay, text = delay_parse(rest)
    return RemindRequest(text=text, due_at=now + delay)


def _parse_at(rest: str, now: datetime, zone: ZoneInfo) -> RemindRequest:
    words = rest.split()
    if not words:
        raise ReminderError("Say when after `at`.")
    today = now.astimezone(zone).date()
    day = _day_word(words[0], today)
    if day is not None:
        words = words[1:]
    if not words:
        raise ReminderError("Add the time after the date, e.g. 09:00.")
    at = clock_parse(words[0])
    text = " ".join(words[1:])
    if day is None:  # the next such time: today's if still ahead, else tomorrow's
        due = local_moment(today, at, zone)
        if due <= now:
            due = local_moment(today + timedelta(days=1), at, zone)
        return RemindRequest(text=text, due_at=due)
    return RemindRequest(text=text, due_at=local_moment(day, at, zone))


def _day_word(word: str, today: date) -> date | None:
    """A date ("2026-12-24", "today", "tomorrow"), or None when ``word`` is not one."""
    lowered = word.lower()
    if lowered == "today":
        return today
    if lowered == "tomorrow":
        return today + timedelta(days=1)
    match = _DATE_RE.match(word)
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise ReminderError(f"`{word}` is not a date: write it as YYYY-MM-DD.") from None


def _parse_every(rest: str) -> RemindRequest:
    words = rest.split()
    if len(words) >= 2 and words[1].lower() == "at":
        words = [words[0], *words[2:]]
    if len(words) < 2:
        raise ReminderError("Say which days and the time, e.g. `every weekday 08:00`.")
    recurrence = Recurrence.parse(f"{words[0]} {words[1]}")
    return RemindRequest(text=" ".join(words[2:]), recurrence=recurrence)
