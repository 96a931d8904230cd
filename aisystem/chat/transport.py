"""The browser chat's transport: what the response manager sends becomes WebSocket events.

The response manager streams a reply by sending one message and editing it as the text
grows; the browser only needs what changed. So this transport keeps what it has shown and
emits ``delta`` (text to append) or, when the text no longer starts with what was shown (a
retried attempt restarts the answer), ``reset`` with the whole text so far.

A file (``/export``'s JSON) becomes a ``file`` event: ``file_name``, ``mime_type``, ``size``
and ``data`` (the bytes, base64), which the page offers as a download under the reply.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

from aisystem.models import Transport
from pipeline.types import OutboundMedia

Event = dict[str, object]
EventSink = Callable[[Event], Awaitable[None]]

# Parts of one reply (only when the pipeline sends more than one message) are shown as one
# bubble, separated like paragraphs.
PART_SEPARATOR = "\n\n"


class WebSocketTransport:
    """One inbound message's replies, sent through ``send`` (the consumer's event sink).

    Every event carries ``id``: the client's id of the message being answered, so the page
    knows which bubble grows. Reactions have nowhere to go in the page: they do nothing.
    """

    name = Transport.WEB.value
    text_format: Literal["telegram_html", "markdown"] = "markdown"
    max_message_length = 0  # no limit: one reply is one bubble
    streams = True
    edit_interval_seconds = 0.1

    def __init__(self, send: EventSink, *, client_id: str) -> None:
        self._send = send
        self.client_id = client_id
        self._parts: dict[str, str] = {}  # transport message id -> its text, in send order
        self._shown = ""

    @property
    def text(self) -> str:
        """Everything shown for this message so far."""
        return PART_SEPARATOR.join(self._parts.values())

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        message_id = uuid.uuid4().hex
        self._parts[message_id] = text
        await self._publish()
        return message_id

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        if message_id not in self._parts:
            raise KeyError(f"no message {message_id} was sent here")
        self._parts[message_id] = text
        await self._publish()

    async def _publish(self) -> None:
        before, now = self._shown, self.text
        if now == before:
            return
        self._shown = now
        if now.startswith(before):
            await self._send({"type": "delta", "id": self.client_id, "text": now[len(before) :]})
        else:
            await self._send({"type": "reset", "id": self.client_id, "text": now})

    async def send_typing(self, chat_id: str) -> None:
        await self._send({"type": "typing", "id": self.client_id})

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        return None

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        """Send the file to the page (a ``file`` event); a caption is shown as text."""
        message_id = uuid.uuid4().hex
        await self._send(
            {
                "type": "file",
                "id": self.client_id,
                "file_name": media.file_name or media.kind,
                "mime_type": media.mime_type or "application/octet-stream",
                "size": len(media.data),
                "data": base64.b64encode(media.data).decode("ascii"),
            }
        )
        if caption:
            await self.send_text(chat_id, caption)
        return message_id
