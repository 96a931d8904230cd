"""The bridge's response manager, ``StopButtonResponses``: the pipeline's, with what Telegram
needs of a streamed reply (``TelegramStream``).

* The first message waits one edit interval after the first text, so an answer complete by
  then goes out once, whole: one SendMessage, no edit and no Stop button. Each edit is a
  request, and Telegram allows a bot about 30 a second over all its chats.
* The final delivery drops the Stop button, in the edit that writes the final text
  (``mark_streaming(chat, False)`` first), or with an edit of its own when the text did not
  change, before the processor sets the final reaction.
* With a ``key``, the reply is journaled (``telegram_bridge.journal``): its messages are
  recorded as they go out, and ``resume`` reads them back after a stop or a crash. A reply
  found complete is not sent again; a partial one is finished in place, with no streamed
  edits (they would cut the fragment back to its first words) and one final edit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.response_manager import EarlierDelivery, ResponseManager, StreamingReply
from pipeline.types import DeliveryResult, Transport
from telegram_bridge.journal import JournalingTransport, ReplyJournal
from telegram_bridge.transport import TelegramTransport


class StopButtonResponses(ResponseManager):
    """The response manager the bridge gives the processor; see the module docstring."""

    def stream(
        self,
        transport: Transport,
        chat_id: str,
        *,
        reply_to: str | None = None,
        key: str = "",
    ) -> StreamingReply:
        return TelegramStream(self, transport, chat_id, reply_to=reply_to, key=key)


class TelegramStream(StreamingReply):
    """A streamed reply on Telegram; see the module docstring."""

    def __init__(
        self,
        manager: ResponseManager,
        transport: Transport,
        chat_id: str,
        *,
        reply_to: str | None,
        key: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.telegram = transport if isinstance(transport, TelegramTransport) else None
        self.journal: ReplyJournal | None = None
        if key:
            self.journal = ReplyJournal(key, transport=transport.name, chat_id=chat_id)
            transport = JournalingTransport(transport, self.journal, reply_to=reply_to)
        super().__init__(manager, transport, chat_id, reply_to=reply_to, clock=clock)
        self._first_text_at: float | None = None
        self._resumed = False

    async def resume(self) -> EarlierDelivery | None:
        if not isinstance(self.transport, JournalingTransport):
            return None
        shown = await self.transport.restore()
        journal = self.transport.journal
        if journal.complete:
            ids = tuple(shown)
            return EarlierDelivery(
                journal.text,
                DeliveryResult(delivered=True, transport_message_ids=ids, parts=len(ids)),
            )
        self.restored(shown)
        self._resumed = bool(shown)
        return None

    async def update(self, text: str) -> None:
        if self._resumed:
            return
        now = self.clock()
        if self._first_text_at is None:
            self._first_text_at = now
        waited = now - self._first_text_at
        if not self.message_ids and waited < self.transport.edit_interval_seconds:
            return  # nothing on screen yet: the answer may be whole before the interval is up
        await super().update(text)

    async def finish(self, text: str, *, final: bool = True) -> DeliveryResult:
        if self.telegram is not None:
            self.telegram.mark_streaming(self.chat_id, False)
        if isinstance(self.transport, JournalingTransport):
            self.transport.batch_saves = True
        result = await super().finish(text, final=final)
        if self.journal is not None:  # before any other request (see ``journal``)
            if result.delivered and final:
                await self.journal.finished(text)
            else:
                await self.journal.flush()
        if self.telegram is not None:
            await self.telegram.clear_stop_button(self.chat_id)
        return result
