"""The REST API's transport: replies are collected for the response, and streamed as
Server-Sent Events when the client asked for ``text/event-stream``."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Literal

from pipeline.types import OutboundMedia


@dataclass(frozen=True)
class StreamEvent:
    """``delta``: text to append; ``reset``: the answer restarted (a retried attempt), the
    ``text`` is the whole answer so far."""

    event: Literal["delta", "reset"]
    text: str


class ApiTransport:
    """A REST request's replies. No typing indicator or reactions: an HTTP client has
    nowhere to show them, so those calls do nothing."""

    name = "api"
    text_format: Literal["telegram_html", "markdown"] = "markdown"
    max_message_length = 0  # no limit: one reply is one message
    edit_interval_seconds = 0.0

    def __init__(self, events: asyncio.Queue[StreamEvent] | None = None) -> None:
        self.events = events
        self.streams = events is not None
        self.messages: dict[str, str] = {}

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        message_id = uuid.uuid4().hex
        self.messages[message_id] = ""
        await self._show(message_id, text)
        return message_id

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        await self._show(message_id, text)

    async def _show(self, message_id: str, text: str) -> None:
        before = self.messages.get(message_id, "")
        self.messages[message_id] = text
        if self.events is None or text == before:
            return
        if text.startswith(before):
            await self.events.put(StreamEvent("delta", text[len(before) :]))
        else:
            await self.events.put(StreamEvent("reset", text))

    async def send_typing(self, chat_id: str) -> None:
        return None

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        return None

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        return await self.send_text(chat_id, caption or f"[{media.kind}: {media.file_name}]")
