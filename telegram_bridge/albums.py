"""Albums: Telegram sends each photo or file of a media group as its own message.

``MediaGroupBuffer`` holds the parts of one album until none has arrived for ``delay``
seconds (default 1.0 s after the last part), then hands on one ``InboundMessage``:

* the parts in message-id order, their attachments concatenated in that order;
* the id, date and sender of the first part; the text (caption) of the first part that has
  one; any part's reply, mention, edit or forward flag.

Order within a chat is kept: a message outside any album (``media_group`` None) first
flushes the chat's pending albums, so it is never handed on ahead of an album that
started before it. ``flush_all`` hands everything on at once (shutdown).

Pure asyncio: one timer task per pending album, restarted by each new part. ``sleep`` is
injectable so tests control time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from pipeline.types import InboundMessage

logger = logging.getLogger(__name__)

Deliver = Callable[[InboundMessage], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_ALBUM_DELAY_SECONDS = 1.0


def merge_album(parts: list[InboundMessage]) -> InboundMessage:
    """One message for the album ``parts`` (see the module docstring). Raises ValueError if
    ``parts`` is empty."""
    if not parts:
        raise ValueError("an album has at least one part")
    ordered = sorted(parts, key=_id_order)
    first = ordered[0]
    caption = next((part.text for part in ordered if part.text.strip()), "")
    return replace(
        first,
        text=caption,
        attachments=tuple(item for part in ordered for item in part.attachments),
        reply_to=next((part.reply_to for part in ordered if part.reply_to), None),
        mentions_assistant=any(part.mentions_assistant for part in ordered),
        is_edited=any(part.is_edited for part in ordered),
        is_forwarded=any(part.is_forwarded for part in ordered),
    )


def _id_order(message: InboundMessage) -> tuple[int, str]:
    """Telegram ids are integers; compare them as such (a non-numeric id sorts last)."""
    digits = message.message_id.isdigit()
    return (int(message.message_id) if digits else 2**63, message.message_id)


class MediaGroupBuffer:
    """Buffers album parts and hands each album on as one message through ``deliver``.

    ``deliver`` errors propagate out of ``add`` and ``flush_all``; when the timer hands an
    album on, they are logged instead (nobody awaits the timer)."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        delay: float = DEFAULT_ALBUM_DELAY_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.deliver = deliver
        self.delay = delay
        self.sleep = sleep
        self._parts: dict[tuple[str, str], list[InboundMessage]] = {}
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}

    @property
    def pending(self) -> int:
        """How many albums are waiting for more parts."""
        return len(self._parts)

    async def add(self, message: InboundMessage, media_group: str | None) -> None:
        """Take ``message``: buffer it if it is part of album ``media_group``, otherwise flush
        the chat's pending albums and hand it on now."""
        if media_group is None:
            await self._flush_chat(message.chat_id)
            await self.deliver(message)
            return
        key = (message.chat_id, media_group)
        self._parts.setdefault(key, []).append(message)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._timers[key] = asyncio.create_task(self._flush_later(key), name=f"album:{key[1]}")

    async def flush_all(self) -> None:
        """Hand on every pending album now, oldest first."""
        for key in list(self._parts):
            await self._flush(key)

    async def _flush_chat(self, chat_id: str) -> None:
        for key in [key for key in self._parts if key[0] == chat_id]:
            await self._flush(key)

    async def _flush_later(self, key: tuple[str, str]) -> None:
        await self.sleep(self.delay)
        self._timers.pop(key, None)  # this task is finishing: flushing must not cancel it
        try:
            await self._flush(key)
        except Exception:
            logger.exception("handing on telegram album %s failed", key[1])

    async def _flush(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        parts = self._parts.pop(key, None)
        if parts:
            await self.deliver(merge_album(parts))
