"""Messages the bridge took from Telegram and has not finished: kept for the next start.

Telegram does not send a message again once the client has taken it. So at a stop, every
message taken and not finished is stored as interrupted, and the next start fetches and
resumes it (``TelegramBridge.resume_interrupted``; the pipeline's dedup claim resumes it
once):

* ``taken``/``finished`` bracket a message's time in the bridge; a job cancelled by the drain
  deadline never reaches ``finished``;
* ``refused`` is a message that arrived after intake closed (or was refused by the draining
  dispatcher): kept in arrival order until ``store`` runs, stored at once afterwards;
* ``store`` (at the stop, after the drain) creates the missing rows as interrupted, in the
  order the messages were taken, then marks the ones still being processed as interrupted,
  as ``outcomes.messages_mark_interrupted`` always has.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.utils import timezone

from pipeline import outcomes
from pipeline.types import InboundMessage
from telegram_bridge.records import messages_record_interrupted

logger = logging.getLogger(__name__)


class UnfinishedMessages:
    """See the module docstring. Use it from one event loop."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self._taken: dict[tuple[str, str], InboundMessage] = {}
        self._refused: list[InboundMessage] | None = []  # None once ``store`` has run

    def __len__(self) -> int:
        return len(self._taken)

    def taken(self, message: InboundMessage) -> None:
        self._taken[message.chat_id, message.message_id] = message

    def finished(self, message: InboundMessage) -> None:
        self._taken.pop((message.chat_id, message.message_id), None)

    async def refused(self, message: InboundMessage) -> None:
        """``message`` will not be processed by this process: keep it for the next start."""
        self.finished(message)
        logger.warning(
            "stopping: message %s in chat %s kept for the next start",
            message.message_id,
            message.chat_id,
        )
        if self._refused is not None:
            self._refused.append(message)
            return
        # After store(): on its own. asgiref's one thread runs these after store's writes.
        await sync_to_async(messages_record_interrupted)(messages=[message], now=timezone.now())

    async def store(self) -> int:
        """Store or mark every message taken and not finished, and those refused so far, as
        interrupted; returns how many there were."""
        left = [*self._taken.values(), *(self._refused or [])]
        self._taken.clear()
        self._refused = None
        if not left:
            return 0
        await sync_to_async(messages_record_interrupted)(messages=left, now=timezone.now())
        await sync_to_async(outcomes.messages_mark_interrupted)(
            transport=self.transport, keys=[(m.chat_id, m.message_id) for m in left]
        )
        return len(left)
