"""Which messages count as catch-up: those that arrived while the bridge was down.

Pyrogram's gap recovery hands them over at start. A message (or an edit) made before the
bridge started is catch-up if it is within the look-back (``catch_up_minutes``) and within
the chat's budget (``catch_up_messages``); older ones, and those over the budget, are
skipped (logged). Duplicates are the pipeline's to drop, by their dedup key.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from pyrogram import types

logger = logging.getLogger(__name__)

# Messages sent this close before the start are live: clocks differ a little.
LIVE_MARGIN = timedelta(seconds=5)


class CatchUpWindow:
    def __init__(self, *, started_at: datetime, minutes: int, per_chat: int) -> None:
        self.started_at = started_at
        self.look_back = timedelta(minutes=minutes)
        self.per_chat = per_chat
        self._counts: Counter[str] = Counter()

    def classify(self, message: types.Message) -> bool | None:
        """False: a live message. True: one that arrived while the bridge was down.
        None: too old or beyond the per-chat budget of catch-up (logged)."""
        sent_at = _aware(message.edit_date or message.date)
        if sent_at >= self.started_at - LIVE_MARGIN:
            return False
        if timezone.now() - sent_at > self.look_back:
            logger.info("catch-up: skipping message %s, older than the look-back", message.id)
            return None
        chat = str(message.chat.id) if message.chat else ""
        self._counts[chat] += 1
        if self._counts[chat] > self.per_chat:
            logger.info("catch-up: skipping message %s, over the per-chat limit", message.id)
            return None
        return True


def _aware(moment: datetime | None) -> datetime:
    """Pyrogram gives naive local times (``datetime.fromtimestamp``): make them aware."""
    return timezone.now() if moment is None else moment.astimezone(UTC)
