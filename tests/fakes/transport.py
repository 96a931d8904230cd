"""A transport that records what the response manager asks it to do.

The pipeline's real transports (Telegram, browser chat, REST) are tested in their own
suites; this one lets pipeline tests read what a user would have seen, in order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

from pipeline.types import FormattingRejected, OutboundMedia


@dataclass
class Sent:
    message_id: str
    text: str
    reply_to: str | None
    edits: list[str] = field(default_factory=list)

    @property
    def final_text(self) -> str:
        return self.edits[-1] if self.edits else self.text


_IDS = itertools.count(5000)  # message ids are unique per chat, as on Telegram


class RecordingTransport:
    name = "telegram"
    text_format: Literal["telegram_html", "markdown"] = "telegram_html"

    def __init__(
        self,
        *,
        streams: bool = False,
        max_message_length: int = 4096,
        edit_interval_seconds: float = 0.0,
        reject_html: bool = False,
    ) -> None:
        self.streams = streams
        self.max_message_length = max_message_length
        self.edit_interval_seconds = edit_interval_seconds
        self.reject_html = reject_html
        self.sent: list[Sent] = []
        self.reactions: list[tuple[str, str | None]] = []
        self.typing = 0
        self._ids = _IDS

    def _check(self, text: str) -> None:
        if self.reject_html and "<" in text:
            raise FormattingRejected("can't parse entities")

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        self._check(text)
        sent = Sent(str(next(self._ids)), text, reply_to)
        self.sent.append(sent)
        return sent.message_id

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        self._check(text)
        next(s for s in self.sent if s.message_id == message_id).edits.append(text)

    async def send_typing(self, chat_id: str) -> None:
        self.typing += 1

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        self.reactions.append((message_id, emoji))

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        return await self.send_text(chat_id, caption, reply_to=reply_to)

    @property
    def texts(self) -> list[str]:
        """What the user sees now, message by message."""
        return [sent.final_text for sent in self.sent]
