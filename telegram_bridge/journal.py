"""Exactly one answer on screen through stops, crashes and long flood waits.

A reply's messages are recorded as they go out (``ReplyDelivery``, through
``aisystem.services.delivery``), so whoever picks the reply up again finishes those messages
instead of sending it again:

* before each send, the MTProto ``random_id`` it will use is stored; right after it, the
  message id (``ReplyJournal.before_send``/``sent``), before anything else is sent, edited or
  reacted to. A send whose answer never came back (the process died meanwhile) keeps its
  random id: the next attempt first looks for that message in the chat
  (``TelegramTransport.find_own_message``: our message replying to the question, or after the
  reply's previous message), and if it is not there sends with the same random id, which
  Telegram drops if the first send did get through (RANDOM_ID_DUPLICATE): then it looks
  again, and edits what it finds into the text it meant to send;
* once the final text is all on screen, the reply is marked complete with that text.

Who picks a reply up: the pipeline, when it resumes a message after a stop or a crash
(``StopButtonResponses``' stream: a complete reply is recorded as it is, without asking Claude
again; a partial one is finished by editing its messages), and the outbox, when a rescheduled
answer's time comes (the item's idempotency key is the reply's key, ``answer_key``): it edits
the streamed messages into the final text and sends only the parts never shown.

What is not covered: a send whose answer was lost, that Telegram refuses as a duplicate and
that the look-up still cannot find (it reads the ``LOOKUP_SPAN`` ids after the last one
known), is on screen but unknown; the reply then goes on in a new message (logged), so that
message stays. Telegram offers no way to ask for a message by its random id.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import replace

from asgiref.sync import sync_to_async
from pyrogram import errors

from aisystem.services.delivery import (
    DeliveredPart,
    DeliveryState,
    reply_delivery_get,
    reply_delivery_write,
)
from pipeline.types import OutboundMedia, Transport
from telegram_bridge.adapter import telegram_message_id
from telegram_bridge.transport import TelegramTransport

logger = logging.getLogger(__name__)

_get = sync_to_async(reply_delivery_get)
_write = sync_to_async(reply_delivery_write)


def new_random_id() -> int:
    """A random id for a send: 63 random bits (MTProto's random_id is a signed 64-bit int)."""
    return secrets.randbits(63) or 1


class ReplyJournal:
    """The record of one reply's messages (see the module docstring). Use it from one task."""

    def __init__(self, key: str, *, transport: str, chat_id: str) -> None:
        self.key = key
        self.transport = transport
        self.chat_id = chat_id
        self.parts: list[DeliveredPart] = []
        self.complete = False
        self.text = ""
        self._stored = False  # a row exists (read or written)
        self.unsaved = False  # a message id known here is not stored yet (see ``sent``)

    @property
    def message_ids(self) -> list[str]:
        """The messages known to show this reply, in order."""
        return [part.message_id for part in self.parts if part.message_id]

    @property
    def pending(self) -> DeliveredPart | None:
        """The last part, if it was sent without its answer coming back."""
        if self.parts and not self.parts[-1].message_id:
            return self.parts[-1]
        return None

    async def load(self) -> None:
        state = await _get(key=self.key)
        if state is not None:
            self.parts, self.complete, self.text = list(state.parts), state.complete, state.text
            self._stored = True

    async def before_send(self) -> int:
        """The random id for the reply's next message, stored before it is sent: the pending
        part keeps its own; a new part gets a new one."""
        pending = self.pending
        if pending is not None:
            return pending.random_id
        part = DeliveredPart(random_id=new_random_id())
        self.parts.append(part)
        await self._save()
        return part.random_id

    async def sent(self, message_id: str, *, save: bool = True) -> None:
        """The pending part went out as ``message_id``. Stored at once (shielded: a stop
        arriving now must not lose what Telegram already has), or with ``save=False`` by the
        next write (``flush``, ``finished``), which the caller makes before any other request."""
        if self.pending is None:
            raise RuntimeError("sent() without before_send()")
        self.parts[-1] = replace(self.parts[-1], message_id=message_id)
        self.unsaved = True
        if save:
            await self.flush()

    async def flush(self) -> None:
        """Store a message id ``sent(save=False)`` left unsaved."""
        if self.unsaved:
            await asyncio.shield(self._save())

    def lost(self) -> None:
        """Telegram has the pending part but it cannot be found: go on without it."""
        if self.pending is not None:
            self.parts.pop()

    def start_over(self) -> None:
        """Forget what is on screen (the next send writes it): a new reply under this key."""
        self.parts, self.complete, self.text = [], False, ""

    async def finished(self, text: str) -> None:
        """All of ``text`` is on screen."""
        self.complete, self.text = True, text
        await asyncio.shield(self._save())

    async def _save(self) -> None:
        state = DeliveryState(parts=tuple(self.parts), complete=self.complete, text=self.text)
        self.unsaved = False
        new, self._stored = not self._stored, True
        await _write(
            key=self.key,
            transport=self.transport,
            chat_external_id=self.chat_id,
            state=state,
            new=new,
        )


class JournalingTransport:
    """``inner`` with each text send recorded in ``journal`` and sent once (see the module
    docstring); everything else passes through. ``reply_to`` is the message the reply
    answers (its first part replies to it)."""

    def __init__(self, inner: Transport, journal: ReplyJournal, *, reply_to: str | None) -> None:
        self.inner = inner
        self.journal = journal
        self.reply_to = reply_to
        self.name = inner.name
        self.text_format = inner.text_format
        self.max_message_length = inner.max_message_length
        self.streams = inner.streams
        self.edit_interval_seconds = inner.edit_interval_seconds
        self.telegram = inner if isinstance(inner, TelegramTransport) else None
        # While a reply's final delivery runs, a send's message id is stored by the next
        # write: before the next request, or with the reply's completion right after the
        # last one (one write fewer for a one-message answer; the window is the same).
        self.batch_saves = False

    async def restore(self) -> list[str]:
        """Read the journal, look for a part whose send got no answer, and return the ids
        of the messages showing the reply, in order."""
        await self.journal.load()
        if self.journal.pending is not None and self.telegram is not None:
            found = await self._look_up()
            if found is not None:
                await self.journal.sent(found)
        return self.journal.message_ids

    async def _look_up(self) -> str | None:
        assert self.telegram is not None
        known = self.journal.message_ids
        question = _telegram_id(self.reply_to)
        if known:
            return await self.telegram.find_own_message(self.journal.chat_id, after=int(known[-1]))
        if question is None:
            return None
        return await self.telegram.find_own_message(
            self.journal.chat_id, after=question, reply_to=question
        )

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        await self.journal.flush()
        random_id = await self.journal.before_send()
        try:
            message_id = await self._send(chat_id, text, reply_to, random_id)
        except errors.RandomIdDuplicate:
            # An earlier attempt of this send got through: Telegram dropped this one.
            found = await self._look_up() if self.telegram is not None else None
            if found is not None:
                await self.journal.sent(found)
                await self.inner.edit_text(chat_id, found, text)  # it may show an older text
                return found
            logger.warning(
                "reply %s: an earlier send got through but cannot be found; going on in a "
                "new message",
                self.journal.key,
            )
            self.journal.lost()
            random_id = await self.journal.before_send()
            message_id = await self._send(chat_id, text, reply_to, random_id)
        await self.journal.sent(message_id, save=not self.batch_saves)
        return message_id

    async def _send(self, chat_id: str, text: str, reply_to: str | None, random_id: int) -> str:
        if self.telegram is not None:
            return await self.telegram.send_text(
                chat_id, text, reply_to=reply_to, random_id=random_id
            )
        return await self.inner.send_text(chat_id, text, reply_to=reply_to)

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        await self.journal.flush()
        await self.inner.edit_text(chat_id, message_id, text)

    async def send_typing(self, chat_id: str) -> None:
        await self.journal.flush()
        await self.inner.send_typing(chat_id)

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        await self.journal.flush()
        await self.inner.react(chat_id, message_id, emoji)

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        await self.journal.flush()
        return await self.inner.send_media(chat_id, media, caption=caption, reply_to=reply_to)


def _telegram_id(key: str | None) -> int | None:
    if not key:
        return None
    try:
        return telegram_message_id(key)
    except ValueError:
        return None
