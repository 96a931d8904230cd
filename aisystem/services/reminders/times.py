"""Time zones and recurrences: reading and showing a person's wall-clock times.

A person's zone is ``PersonSettings.time_zone``, else ``TIME_ZONE``. A recurrence ("weekday
08:00") is a wall-clock time in it: across a DST change the UTC instant moves, the local time
does not. A time that does not exist that day (the spring-forward gap) fires at the instant
it maps to (an hour later on the clock); one that exists twice fires the first time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.db import transaction

from aisystem.models import PersonSettings, Reminder, ReminderKind, ReminderStatus

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The day words a recurrence accepts → the weekdays (Monday = 0) they mean.
DAY_SETS: dict[str, frozenset[int]] = {
    "day": frozenset(range(7)),
    "weekday": frozenset(range(5)),
    "weekend": frozenset({5, 6}),
    **{name: frozenset({number}) for number, name in enumerate(WEEKDAYS)},
}
DAY_ALIASES = {
    "daily": "day",
    "weekdays": "weekday",
    "workday": "weekday",
    "weekends": "weekend",
    **{name[:3]: name for name in WEEKDAYS},
    **{f"{name}s": name for name in WEEKDAYS},
    "tue": "tuesday",
    "tues": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "thur": "thursday",
    "thurs": "thursday",
}


class ReminderError(ValueError):
    """Input the person must fix; the message is written for them."""


# --- Time zones -------------------------------------------------------------------------------


@functools.cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def time_zone_parse(name: str) -> ZoneInfo | None:
    """The IANA zone ``name`` spells (case-insensitively, "UTC" included), or None."""
    canonical = _zone_names().get(name.strip().lower())
    if canonical is None:
        return None
    try:
        return ZoneInfo(canonical)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def default_time_zone() -> ZoneInfo:
    return ZoneInfo(str(settings.TIME_ZONE))


def person_time_zone(*, identity_id: int) -> ZoneInfo:
    """The person's zone: the one they chose with /timezone, else the installation's."""
    name = (
        PersonSettings.objects.filter(identity_id=identity_id)
        .values_list("time_zone", flat=True)
        .first()
    )
    return (time_zone_parse(name) if name else None) or default_time_zone()


def person_time_zone_set(*, identity_id: int, name: str, now: datetime) -> ZoneInfo:
    """Store the person's zone; their recurring prompts move to the same wall-clock time in
    it (one-off reminders keep their instant). Raises ReminderError for an unknown name."""
    zone = time_zone_parse(name)
    if zone is None:
        raise ReminderError(
            f"I don't know the time zone `{name.replace('`', '')[:64]}`. "
            "Use a name like `/timezone Europe/Berlin` or `/timezone America/New_York`."
        )
    with transaction.atomic():
        PersonSettings.objects.update_or_create(
            identity_id=identity_id, defaults={"time_zone": zone.key}
        )
        for reminder in Reminder.objects.filter(
            identity_id=identity_id, kind=ReminderKind.PROMPT, status=ReminderStatus.ACTIVE
        ):
            due = recurrence_next(Recurrence.parse(reminder.recurrence), zone, after=now)
            Reminder.objects.filter(pk=reminder.pk).update(due_at=due)
    return zone


def moment_text(moment: datetime, zone: ZoneInfo) -> str:
    """An instant as the person reads it: "Thu 24 Dec 2026, 09:00 (Europe/Berlin)"."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} ({zone.key})"


def clock_text(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """ "09:00" on the day of ``now``, else "2026-12-24 09:00" (both in ``zone``)."""
    local = moment.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    return f"{local:%H:%M}" if same_day else f"{local:%Y-%m-%d %H:%M}"


# --- Recurrences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recurrence:
    """Every ``days`` (a key of DAY_SETS) at ``at`` on the person's wall clock."""

    days: str
    at: time

    def __str__(self) -> str:
        return f"{self.days} {self.at:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> Recurrence:
        """From "weekday 08:00" (the stored form; aliases such as "mon" accepted)."""
        words = text.strip().lower().split()
        if len(words) != 2:
            raise ReminderError(f"A recurrence is a day and a time, like `weekday 08:00`: {text}")
        days = DAY_ALIASES.get(words[0], words[0])
        if days not in DAY_SETS:
            raise ReminderError(
                f"I don't know the day `{words[0][:20]}`: use day, weekday, weekend or a "
                "weekday name, e.g. `every monday 09:00`."
            )
        return cls(days=days, at=clock_parse(words[1]))

    def describe(self) -> str:
        days = {"day": "day", "weekday": "weekday (Mon to Fri)", "weekend": "Saturday and Sunday"}
        return f"every {days.get(self.days, self.days.capitalize())} at {self.at:%H:%M}"


def clock_parse(text: str) -> time:
    """ "8:00", "08:00" or "8" (24-hour) as a time; ReminderError otherwise."""
    hours, _, minutes = text.partition(":")
    if hours.isdigit() and (minutes.isdigit() or not minutes) and len(minutes) in (0, 2):
        hour, minute = int(hours), int(minutes or 0)
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise ReminderError(f"`{text[:20]}` is not a time: write it as 24-hour HH:MM, e.g. 08:30.")


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``at`` on ``zone``'s wall clock, as an aware datetime (see the module's
    note on times that do not exist or exist twice)."""
    naive = datetime.combine(day, at)
    # fold=0: the first of two ambiguous times; a missing time maps through the old offset.
    return naive.replace(tzinfo=zone).astimezone(UTC)


def recurrence_next(recurrence: Recurrence, zone: ZoneInfo, *, after: datetime) -> datetime:
    """The first occurrence strictly after ``after`` (UTC)."""
    start = after.astimezone(zone).date()
    for offset in range(8):
        day = start + timedelta(days=offset)
        if day.weekday() not in DAY_SETS[recurrence.days]:
            continue
        moment = local_moment(day, recurrence.at, zone)
        if moment > after:
            return moment
    raise AssertionError("every recurrence has an occurrence within eight days")
