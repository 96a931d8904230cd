"""The retry schedule of webhook deliveries: parsing ``AISYSTEM_WEBHOOK_RETRY_SCHEDULE`` and
spreading each delay with jitter.

Pure functions, no Django: ``settings.py`` imports this module to parse the setting at start-up.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

DEFAULT_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"
JITTER = 0.1  # each delay is spread by ±10 %, so endpoints that failed together retry apart
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DELAY = re.compile(r"(\d+)([smhd])")


def retry_schedule_parse(
    raw: str, *, setting: str = "AISYSTEM_WEBHOOK_RETRY_SCHEDULE"
) -> tuple[timedelta, ...]:
    """``"5s,5m,30m"`` as delays; raises ``ImproperlyConfigured`` naming ``setting`` and the
    bad item. An empty schedule means a single attempt (no retries)."""
    delays = []
    for item in (part.strip().lower() for part in raw.split(",")):
        if not item:
            continue
        match = _DELAY.fullmatch(item)
        if match is None or int(match[1]) == 0:
            raise ImproperlyConfigured(
                f"{setting}: {item!r} is not a delay; use a comma-separated list of positive "
                f"whole numbers with a unit s, m, h or d, for example {DEFAULT_SCHEDULE}"
            )
        delays.append(timedelta(seconds=int(match[1]) * _UNITS[match[2]]))
    return tuple(delays)


def retry_delay(schedule: tuple[timedelta, ...], failed_attempts: int) -> timedelta | None:
    """How long to wait after the ``failed_attempts``-th failure (1 for the first), with jitter;
    None once the schedule is used up (the delivery is dead)."""
    if failed_attempts > len(schedule):
        return None
    delay = schedule[failed_attempts - 1]
    return delay * random.uniform(1 - JITTER, 1 + JITTER)
