"""Reminders: time zones, recurrences, scheduling, and the core half of delivery.

The rules that need no model call live here, so that the commands, the agent tool and the
delivery job agree:

* **Time zones.** A person's zone is ``PersonSettings.time_zone``, else ``TIME_ZONE``. Times
  people type are read in it, and every answer shows times in it.
* **Recurrences** ("weekday 08:00", "day 07:30", "monday 09:00", "weekend 10:00") are wall
  clock times in the person's zone: across a DST change the UTC instant moves, the local time
  does not. A time that does not exist that day (the spring-forward gap) fires at the
  instant it maps to (an hour later on the clock); one that exists twice fires the first time.
* **Limits.** At most ``AISYSTEM_REMINDERS_PER_PERSON`` active reminders per person.
* **Delivery, exactly once.** A worker claims a due reminder with a conditional UPDATE that
  sets a lease (``claimed_until``); the lease's value is the claim's token. Marking it sent
  (or moving a recurring prompt to its next occurrence) is conditional on still holding that
  token and happens in the transaction that queues the message, so two workers never both
  deliver one occurrence, and a worker that dies mid-delivery leaves nothing behind: its
  lease runs out and another worker delivers. The outbox key and the stored message's id
  name the occurrence, so even a retried write cannot queue it twice.
* **Lateness.** An occurrence delivered more than ``LATE_AFTER`` after it was due says so:
  "(due at 09:00, sent late)". A recurring prompt missed several times is answered once and
  moves to its next occurrence after now.
"""

from __future__ import annotations

from aisystem.services.reminders.delivery import (
    LATE_AFTER,
    LEASE,
    REMINDER_PREFIX,
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
from aisystem.services.reminders.scheduling import (
    MAX_TEXT_CHARS,
    reminder_cancel,
    reminder_create,
    reminder_describe,
    reminders_active,
    reminders_limit,
)
from aisystem.services.reminders.times import (
    DAY_ALIASES,
    DAY_SETS,
    WEEKDAYS,
    Recurrence,
    ReminderError,
    clock_parse,
    clock_text,
    default_time_zone,
    local_moment,
    moment_text,
    person_time_zone,
    person_time_zone_set,
    recurrence_next,
    time_zone_parse,
)

__all__ = [
    "DAY_ALIASES",
    "DAY_SETS",
    "LATE_AFTER",
    "LEASE",
    "MAX_TEXT_CHARS",
    "REMINDER_PREFIX",
    "WEEKDAYS",
    "ClaimedReminder",
    "Recurrence",
    "ReminderError",
    "clock_parse",
    "clock_text",
    "default_time_zone",
    "late_note",
    "local_moment",
    "moment_text",
    "person_time_zone",
    "person_time_zone_set",
    "recurrence_next",
    "reminder_advance",
    "reminder_cancel",
    "reminder_claim",
    "reminder_create",
    "reminder_describe",
    "reminder_enqueue",
    "reminder_release",
    "reminder_send_once",
    "reminder_sent_event",
    "reminders_active",
    "reminders_due",
    "reminders_limit",
    "time_zone_parse",
]
