"""Step 5, the response manager: formats a reply for its transport and delivers it.

Formatting: for a ``telegram_html`` transport, Claude's Markdown becomes Telegram HTML split
into parts of at most ``max_message_length`` UTF-16 units on paragraph and code-fence
boundaries (``pipeline.formatting``); if the transport refuses the entities
(``FormattingRejected``), the same reply goes out as plain text. A ``markdown`` transport
gets the text as is, split only if it has a limit.

Streaming: ``StreamingReply`` shows the text as it grows by editing one message, no more
often than the transport's ``edit_interval_seconds``; past the length limit it finishes
that message and continues in a new one. A transport's own stream (``stream``'s ``key``
names the reply) may remember what it put on screen, so that a reply cut short by a stop or
a crash is finished in place (``StreamingReply.resume``); the base one remembers nothing.
Typing and status reactions are best effort: a failure there is logged, never fatal to
the reply.

Status reactions: 👀 when a message is taken, 🤔 once its answer starts to show, then 👍
(delivered), 🕒 (the answer waits for the transport, e.g. a long Telegram flood wait: the
outbox delivers it later and sets 👍 then) or ❌ (``final_reaction``). 👀 and 🤔 only mark
passing states (``TRANSIENT_REACTIONS``): a transport short of its request budget may drop
them, never the final one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aisystem.models import MessageStatus
from pipeline.formatting import html_to_plain, render_for_telegram, split_plain_text
from pipeline.types import DeliveryResult, FormattingRejected, Transport

logger = logging.getLogger(__name__)

REACTION_RECEIVED = "👀"
REACTION_THINKING = "🤔"
REACTION_DONE = "👍"
REACTION_WAITING = "🕒"
REACTION_FAILED = "❌"
TRANSIENT_REACTIONS = frozenset({REACTION_RECEIVED, REACTION_THINKING})
TYPING_INTERVAL_SECONDS = 4.0
LEFTOVER_MARK = "…"
_PLAIN_LIMIT = 2**31


@dataclass(frozen=True)
class EarlierDelivery:
    """A reply delivered whole before a restart: its text and where it is."""

    text: str
    delivery: DeliveryResult


def answer_key(message_pk: int) -> str:
    """The name of the answer to inbound message ``message_pk`` (``ResponseManager.stream``'s
    ``key``): the idempotency key ``outcomes`` gives its outbox item when the answer is
    rescheduled, so that the outbox finishes the messages the stream showed."""
    return f"reply:{message_pk}"


def final_reaction(status: str, delivery: DeliveryResult) -> str:
    """The reaction that ends a message's reactions: 👍 for an answer delivered, 🕒 for an
    answer its transport will deliver later (rescheduled), ❌ for everything else."""
    if status != MessageStatus.ANSWERED:
        return REACTION_FAILED
    if delivery.delivered:
        return REACTION_DONE
    return REACTION_WAITING if delivery.retry_after_seconds is not None else REACTION_FAILED


def format_parts(text: str, transport: Transport) -> list[str]:
    """The messages to send for ``text`` on ``transport``, in order ([] if blank)."""
    if transport.text_format == "telegram_html":
        return render_for_telegram(text, limit=transport.max_message_length)
    return split_plain_text(text, transport.max_message_length or _PLAIN_LIMIT)


def plain_parts(text: str, transport: Transport) -> list[str]:
    """The same reply without formatting, for when the transport refused the entities."""
    plain = text
    if transport.text_format == "telegram_html":
        plain = "\n\n".join(html_to_plain(part) for part in format_parts(text, transport))
    return split_plain_text(plain, transport.max_message_length or _PLAIN_LIMIT)


class ResponseManager:
    async def deliver(
        self,
        transport: Transport,
        chat_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        shown: Sequence[tuple[str, str]] = (),
    ) -> DeliveryResult:
        """Send ``text`` (Markdown) as one or more messages. ``shown``: (id, text) of messages
        already showing part of this reply (a text of "" when unknown): they are edited into
        its first parts, and only the rest is sent."""
        return await self._send_parts(
            transport, chat_id, text, reply_to=reply_to, shown=list(shown)
        )

    async def _send_parts(
        self,
        transport: Transport,
        chat_id: str,
        text: str,
        *,
        reply_to: str | None,
        shown: list[tuple[str, str]],
    ) -> DeliveryResult:
        """Send ``text``'s parts, editing the ``shown`` (id, text) messages first. If the
        formatting is refused midway, the plain pass edits what the first pass sent. An edit
        that would not change a message is never sent (Telegram refuses it). Messages left
        over when the reply needs fewer parts than were shown are edited to "…"."""
        try:
            parts = format_parts(text, transport)
            ids = await self._write(transport, chat_id, parts, reply_to, shown)
            plain = False
        except FormattingRejected:
            logger.info("transport %s refused the formatting; sending plain text", transport.name)
            try:
                ids = await self._write(
                    transport, chat_id, plain_parts(text, transport), reply_to, shown
                )
            except Exception as error:
                return _undelivered(transport, error)
            plain = True
        except Exception as error:
            return _undelivered(transport, error)
        for message_id, current in shown[len(ids) :]:
            if current != LEFTOVER_MARK:
                await _best_effort(transport.edit_text(chat_id, message_id, LEFTOVER_MARK), "edit")
        return DeliveryResult(
            delivered=True, transport_message_ids=ids, parts=len(ids), plain_fallback=plain
        )

    @staticmethod
    async def _write(
        transport: Transport,
        chat_id: str,
        parts: list[str],
        reply_to: str | None,
        shown: list[tuple[str, str]],
    ) -> tuple[str, ...]:
        """Edit the ``shown`` messages into the first parts, send the rest (appending to
        ``shown`` as it goes, so a second pass knows what is on screen)."""
        for index, part in enumerate(parts):
            if index < len(shown):
                message_id, current = shown[index]
                if current != part:
                    await transport.edit_text(chat_id, message_id, part)
                    shown[index] = (message_id, part)
            else:
                first = not shown
                message_id = await transport.send_text(
                    chat_id, part, reply_to=reply_to if first else None
                )
                shown.append((message_id, part))
        return tuple(message_id for message_id, _ in shown[: len(parts)])

    def stream(
        self,
        transport: Transport,
        chat_id: str,
        *,
        reply_to: str | None = None,
        key: str = "",
    ) -> StreamingReply:
        """A reply to stream in ``chat_id``. ``key`` names the reply for a stream that
        remembers what it showed (``StreamingReply.resume``); this one does not."""
        return StreamingReply(self, transport, chat_id, reply_to=reply_to)

    @staticmethod
    async def react(transport: Transport, chat_id: str, message_id: str, emoji: str) -> None:
        await _best_effort(transport.react(chat_id, message_id, emoji), "reaction")

    @staticmethod
    def keep_typing(transport: Transport, chat_id: str) -> asyncio.Task[None]:
        """Show "typing…" now and every few seconds until the returned task is cancelled."""

        async def loop() -> None:
            while True:
                await _best_effort(transport.send_typing(chat_id), "typing")
                await asyncio.sleep(TYPING_INTERVAL_SECONDS)

        return asyncio.create_task(loop(), name=f"typing:{chat_id}")


class StreamingReply:
    """A reply that grows: ``update`` with the accumulated Markdown, then ``finish``."""

    def __init__(
        self,
        manager: ResponseManager,
        transport: Transport,
        chat_id: str,
        *,
        reply_to: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manager = manager
        self.transport = transport
        self.chat_id = chat_id
        self.reply_to = reply_to
        self.clock = clock
        self.message_ids: list[str] = []
        self.edits = 0
        self._shown: list[str] = []
        self._last_write = float("-inf")
        self._failed = False
        self._writing: asyncio.Future[None] | None = None

    def restored(self, message_ids: Sequence[str]) -> None:
        """Messages an earlier attempt left showing this reply, their text unknown: they are
        edited into this reply's first parts, not sent again."""
        self.message_ids = list(message_ids)
        self._shown = [""] * len(self.message_ids)

    async def resume(self) -> EarlierDelivery | None:
        """Pick up what an earlier attempt at this reply left on screen (a stop or a crash
        cut it short). The reply delivered whole, if it was: then nothing more is to be
        sent. Otherwise None, and ``update``/``finish`` edit what was shown into this
        attempt's reply. This stream keeps no record, so there is never anything."""
        return None

    async def update(self, text: str) -> None:
        """Show ``text`` (may also shrink when a failed attempt is retried from scratch).
        Skipped if the last write was too recent: the final text always lands in ``finish``."""
        if self._failed or not self.transport.streams:
            return
        if self.clock() - self._last_write < self.transport.edit_interval_seconds:
            return
        parts = format_parts(text, self.transport)
        if not parts:
            return
        # Shielded: a cancellation (/cancel, the Stop button) landing mid-send must not lose
        # the id of a message the transport has sent; ``finish`` waits for the write.
        self._writing = asyncio.ensure_future(self._show_all(parts))
        await asyncio.shield(self._writing)
        self._last_write = self.clock()

    async def _show_all(self, parts: list[str]) -> None:
        try:
            for index, part in enumerate(parts):
                await self._show(part, index=index)
        except Exception as error:
            # Streaming is a courtesy; the final delivery will try again from what was shown.
            logger.info("streamed edit failed: %s", type(error).__name__)
            self._failed = True

    async def _show(self, part: str, *, index: int) -> None:
        if index < len(self.message_ids):
            if self._shown[index] != part:
                await self.transport.edit_text(self.chat_id, self.message_ids[index], part)
                self._shown[index] = part
                self.edits += 1
            return
        reply_to = self.reply_to if not self.message_ids else None
        self.message_ids.append(
            await self.transport.send_text(self.chat_id, part, reply_to=reply_to)
        )
        self._shown.append(part)

    async def finish(self, text: str, *, final: bool = True) -> DeliveryResult:
        """Deliver the final ``text``: edit the streamed messages into its parts, send the
        rest; streamed messages beyond the final parts (the reply shrank) become "…".
        ``final=False``: the text stands in for an answer to come (a deferral notice), so a
        stream that remembers its reply keeps it open for a resumed attempt to replace."""
        if self._writing is not None:
            await asyncio.wait([self._writing])  # a streamed write a cancellation cut short
        return await self.manager._send_parts(
            self.transport,
            self.chat_id,
            text,
            reply_to=self.reply_to,
            shown=list(zip(self.message_ids, self._shown, strict=True)),
        )


async def _best_effort(action: Awaitable[None], what: str) -> None:
    try:
        await action
    except Exception as error:
        logger.info("%s failed: %s", what, type(error).__name__)


def _undelivered(transport: Transport, error: Exception) -> DeliveryResult:
    """A failed delivery. An error with a numeric ``seconds`` (and not ``permanent``) means
    "try again then", e.g. Telegram's long FloodWait: the caller reschedules the reply."""
    logger.warning("delivery to %s failed: %s", transport.name, type(error).__name__)
    seconds = getattr(error, "seconds", None)
    retry = isinstance(seconds, int | float) and not getattr(error, "permanent", False)
    return DeliveryResult(
        delivered=False,
        error=f"{type(error).__name__}: {error}"[:300],
        retry_after_seconds=float(seconds) if retry and seconds is not None else None,
    )
