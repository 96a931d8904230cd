"""Delivery to Telegram through Pyrogram: ``TelegramTransport`` and its ``OutboundLimiter``.

``TelegramTransport`` implements ``pipeline.types.Transport``. It receives Telegram HTML in
the Bot API dialect (the response manager's output), converts it with
``pipeline.formatting.to_pyrogram_html`` and sends it with ``ParseMode.HTML``. When Telegram
rejects the entities it raises ``FormattingRejected`` and the response manager resends the
reply as plain text.

Plain or HTML? The ``Transport`` protocol has no flag for it, so the transport looks at the
text: the response manager's HTML parts are always canonical Telegram HTML
(``normalize_html(text) == text``), while the plain fallback (``html_to_plain``) is not as
soon as it holds a ``<``, ``>`` or ``&``; plain text without them reads the same either way.
Plain text goes out with ``ParseMode.DISABLED``. ``plain=True`` forces it.

Limits: every request the transport makes goes through one ``OutboundLimiter``: sends and
edits take a slot of their chat (about 1 message/s per chat) and of the overall budget (30/s
for bots); reactions, typing and look-ups take a slot of the overall budget only. Typing and
the reactions marking a passing state (👀, 🤔: ``response_manager.TRANSIENT_REACTIONS``) are
optional: when no slot is free within ``OPTIONAL_MAX_WAIT`` they are dropped, so under load
they give way to the messages; the final reaction (👍, 🕒, ❌) waits its turn. A FloodWait
up to ``flood_wait_threshold`` seconds is slept and the call retried once (an optional
request is dropped instead); a longer one, or a second one, raises ``FloodWaitTooLong`` so
the caller reschedules (the outbox reads its ``seconds``). Build the client with
``sleep_threshold=0`` so that Pyrogram's session does not sleep through flood waits first.

Sending once: ``send_text(..., random_id=n)`` sends with that MTProto ``random_id`` (Telegram
drops a second send with the same one, answering RANDOM_ID_DUPLICATE), so a retry after a
crash cannot show the message twice (``telegram_bridge.journal`` stores the id before the
send). kurigram draws the id from ``Client.rnd_id`` with no way to pass one, so the
transport sets ``rnd_id`` to a function that returns the id chosen for the current task
(a ``ContextVar``), else a fresh one as before. ``find_own_message`` looks a send whose
answer was lost up in the chat.

Stop button (bot accounts only: users cannot send inline keyboards). With
``stop_button=True``, call ``mark_streaming(chat_id, True)`` before streaming a reply: the
first message sent in that chat then carries a "⏹ Stop" button (callback data
``stop:<chat_id>``, see ``stop_callback_chat``) that streamed edits keep. Call
``mark_streaming(chat_id, False)`` before the final delivery, whose edit of that message
drops the button, then ``clear_stop_button(chat_id)``, which removes it if no final edit came
(the text had not changed). ``telegram_bridge.replies.StopButtonResponses`` does both for the
processor's streamed replies, before the final reaction; it also holds a reply's first
message back for one edit interval, so a short answer goes out once, whole, with no button
and no edit.

Other buttons (Confirm/Cancel, see ``telegram_bridge.decisions``) are put under a message
after it was sent, and taken off, with ``edit_buttons``.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from pyrogram import Client, enums, errors, types
from pyrogram.errors.rpc_error import RPCError

from aisystem.errors import IntegrationError
from pipeline.formatting import normalize_html, to_pyrogram_html
from pipeline.response_manager import TRANSIENT_REACTIONS
from pipeline.types import FormattingRejected, OutboundMedia
from telegram_bridge.adapter import telegram_message_id

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

STOP_CALLBACK_PREFIX = "stop:"
STOP_BUTTON_TEXT = "⏹ Stop"
OPTIONAL_MAX_WAIT = 0.25  # seconds an optional request (typing, 👀, 🤔) may wait for a slot
LOOKUP_SPAN = 100  # message ids after the last known one that find_own_message reads
_RANDOM_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "telegram_random_id", default=None
)
_FLOOD_ERRORS = (errors.FloodWait, errors.FloodPremiumWait, errors.SlowmodeWait)
_FORMATTING_ERRORS = frozenset(
    {
        "ENTITY_BOUNDS_INVALID",
        "ENTITIES_TOO_LONG",
        "ENTITY_MENTION_USER_INVALID",
        "ENTITY_TEXT_INVALID",
        "ENTITY_DATE_FORMAT_INVALID",
        "ENTITY_DATE_INVALID",
        "MESSAGE_EMPTY",
    }
)


class FloodWaitTooLong(IntegrationError):
    """Telegram asked to wait ``seconds``, longer than the transport sleeps in line (or a
    retry hit a second wait). Not permanent: retry after ``seconds``."""

    def __init__(self, seconds: int, operation: str) -> None:
        super().__init__("telegram", operation, f"flood wait of {seconds} s")
        self.seconds = seconds


def stop_callback_chat(data: str | bytes | None) -> str | None:
    """The chat id a Stop button's callback data names, or None if it is not one."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    if not data or not data.startswith(STOP_CALLBACK_PREFIX):
        return None
    return data.removeprefix(STOP_CALLBACK_PREFIX) or None


class OutboundLimiter:
    """One budget for every request: ``per_chat_interval`` seconds between two messages in one
    chat, and at most ``global_rate`` requests per second overall (None: no overall limit, as
    for user accounts). Each ``reserve`` books the next free slot before it waits, so
    concurrent callers get distinct slots in call order without a lock. ``admitted`` and
    ``dropped`` count the ``acquire`` calls it let through and the ones it turned away."""

    MAX_TRACKED_CHATS = 4096

    def __init__(
        self,
        *,
        per_chat_interval: float = 1.0,
        global_rate: float | None = 30.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_chat_interval = per_chat_interval
        self.global_interval = 1.0 / global_rate if global_rate else 0.0
        self.clock = clock
        self.sleep = sleep
        self.admitted = 0
        self.dropped = 0
        self._next_in_chat: dict[str, float] = {}
        self._next_overall = float("-inf")

    @classmethod
    def for_account(
        cls, *, is_bot: bool, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> OutboundLimiter:
        """Telegram's guidance: bots ~1/s per chat and 30/s overall; users per chat only."""
        return cls(global_rate=30.0 if is_bot else None, clock=clock, sleep=sleep)

    async def acquire(
        self, chat_id: str, *, per_chat: bool = True, max_wait: float | None = None
    ) -> bool:
        """Return True when a request may go to ``chat_id`` (at once if a slot is free).
        ``per_chat=False``: a request that is no message (a reaction, typing), bound by the
        overall budget only. With ``max_wait``, False at once (nothing booked) if the slot is
        further away than that."""
        delay = self.reserve(chat_id, per_chat=per_chat, max_wait=max_wait)
        if delay is None:
            self.dropped += 1
            return False
        if delay > 0:
            await self.sleep(delay)
        self.admitted += 1  # not if cancelled while it waited (its slot stays booked)
        return True

    def reserve(
        self, chat_id: str, *, per_chat: bool = True, max_wait: float | None = None
    ) -> float | None:
        """Book the next slot for a request to ``chat_id``; the seconds until it starts, or
        None (nothing booked) if that is more than ``max_wait``."""
        now = self.clock()
        slot = max(now, self._next_overall)
        if per_chat:
            slot = max(slot, self._next_in_chat.get(chat_id, now))
        if max_wait is not None and slot - now > max_wait:
            return None
        if per_chat:
            self._next_in_chat[chat_id] = slot + self.per_chat_interval
        if self.global_interval:
            self._next_overall = slot + self.global_interval
        if len(self._next_in_chat) > self.MAX_TRACKED_CHATS:
            self._forget_idle_chats(now)
        return slot - now

    def _forget_idle_chats(self, now: float) -> None:
        self._next_in_chat = {chat: t for chat, t in self._next_in_chat.items() if t > now}


class TelegramTransport:
    """``pipeline.types.Transport`` for one Pyrogram client; see the module docstring."""

    name = "telegram"
    text_format: Literal["telegram_html", "markdown"] = "telegram_html"
    max_message_length = 4096
    streams = True
    edit_interval_seconds = 1.0

    def __init__(
        self,
        client: Client,
        *,
        limiter: OutboundLimiter | None = None,
        flood_wait_threshold: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        stop_button: bool = False,
    ) -> None:
        self.client = client
        self.limiter = limiter or OutboundLimiter()
        self.flood_wait_threshold = flood_wait_threshold
        self.sleep = sleep
        self.stop_button = stop_button
        self._streaming: set[str] = set()
        self._stop_messages: dict[str, str] = {}  # chat id -> the message showing the button
        # kurigram types rnd_id as its MsgId class; any callable returning an int does.
        client.rnd_id = _random_id  # type: ignore[assignment]  # see "Sending once" above

    # --- Text ---------------------------------------------------------------------------------

    async def send_text(
        self,
        chat_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        plain: bool = False,
        random_id: int | None = None,
    ) -> str:
        """Send ``text`` (Telegram HTML, or plain: see the module docstring); its message id.
        With ``random_id``, the send uses that MTProto random id (retries too). Raises
        FormattingRejected if Telegram refuses the entities, FloodWaitTooLong, and
        ``errors.RandomIdDuplicate`` if a send with ``random_id`` went out before."""
        html = not plain and _is_telegram_html(text)
        markup = self._stop_markup(chat_id) if self._wants_stop_button(chat_id) else None

        async def send(reply: str | None) -> types.Message | None:
            chosen = _RANDOM_ID.set(random_id)
            try:
                return await self.client.send_message(
                    int(chat_id),
                    to_pyrogram_html(text) if html else text,
                    parse_mode=enums.ParseMode.HTML if html else enums.ParseMode.DISABLED,
                    reply_parameters=_reply_parameters(reply),
                    reply_markup=markup,
                )
            finally:
                _RANDOM_ID.reset(chosen)

        try:
            sent = await self._call(chat_id, "send_message", lambda: send(reply_to), html=html)
        except errors.ReplyMessageIdInvalid:
            # The message we answer was deleted meanwhile: answer without the reference.
            sent = await self._call(chat_id, "send_message", lambda: send(None), html=html)
        message_id = _message_id(sent, "send_message")
        if markup is not None:
            self._stop_messages[chat_id] = message_id
        return message_id

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, *, plain: bool = False
    ) -> None:
        """Replace a message's text; an edit that changes nothing is not an error."""
        html = not plain and _is_telegram_html(text)
        shows_button = self._stop_messages.get(chat_id) == message_id
        keep_button = shows_button and chat_id in self._streaming
        try:
            await self._call(
                chat_id,
                "edit_message_text",
                lambda: self.client.edit_message_text(
                    int(chat_id),
                    int(message_id),
                    to_pyrogram_html(text) if html else text,
                    parse_mode=enums.ParseMode.HTML if html else enums.ParseMode.DISABLED,
                    reply_markup=self._stop_markup(chat_id) if keep_button else None,
                ),
                html=html,
            )
        except errors.MessageNotModified:
            return
        if shows_button and not keep_button:
            del self._stop_messages[chat_id]  # an edit without markup removed the button

    # --- Typing, reactions, media ---------------------------------------------------------

    async def send_typing(self, chat_id: str) -> None:
        """Show "typing…"; optional (see the module docstring)."""
        await self._optional(
            chat_id,
            "send_chat_action",
            lambda: self.client.send_chat_action(int(chat_id), enums.ChatAction.TYPING),
        )

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        """Set our reaction to ``emoji``, or clear it (None); 👀 and 🤔 are optional (see the
        module docstring). Refusals (reactions off in the chat, an emoji the chat does not
        allow) are logged, not raised."""

        async def send() -> object:
            return await self.client.send_reaction(
                int(chat_id), telegram_message_id(message_id), emoji=emoji
            )

        try:
            if emoji in TRANSIENT_REACTIONS:
                await self._optional(chat_id, "send_reaction", send)
            else:
                await self._call(chat_id, "send_reaction", send, per_chat=False)
        except RPCError as error:
            logger.info("telegram reaction in chat %s refused: %s", chat_id, _error_name(error))

    async def find_own_message(
        self, chat_id: str, *, after: int, reply_to: int | None = None
    ) -> str | None:
        """The id of our first message in ``chat_id`` among the ``LOOKUP_SPAN`` ids after
        ``after`` (one replying to ``reply_to``, if given): how a send whose answer never came
        back is found. None if there is none, or the look-up fails (logged)."""
        wanted = list(range(after + 1, after + 1 + LOOKUP_SPAN))
        try:
            found = await self._call(
                chat_id,
                "get_messages",
                lambda: self.client.get_messages(int(chat_id), wanted, replies=0),
                per_chat=False,
            )
        except (RPCError, FloodWaitTooLong) as error:
            logger.warning("looking for our message in chat %s failed: %s", chat_id, error)
            return None
        for message in found if isinstance(found, list) else []:
            if message.empty or not message.outgoing or message.chat is None:
                continue
            if message.chat.id != int(chat_id):
                continue  # a bot's private chats and basic groups share one id sequence
            if reply_to is None or message.reply_to_message_id == reply_to:
                return str(message.id)
        return None

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        """Send a photo or document with an optional caption (HTML or plain, as for text)."""
        html = _is_telegram_html(caption)
        body = to_pyrogram_html(caption) if html else caption
        mode = enums.ParseMode.HTML if html else enums.ParseMode.DISABLED
        reply = _reply_parameters(reply_to)

        async def send() -> types.Message | None:
            upload = io.BytesIO(media.data)
            upload.name = media.file_name or ("photo.jpg" if media.kind == "photo" else "file")
            if media.kind == "photo":
                return await self.client.send_photo(
                    int(chat_id), upload, caption=body, parse_mode=mode, reply_parameters=reply
                )
            return await self.client.send_document(
                int(chat_id),
                upload,
                caption=body,
                parse_mode=mode,
                file_name=upload.name,
                reply_parameters=reply,
            )

        sent = await self._call(chat_id, f"send_{media.kind}", send, html=html)
        return _message_id(sent, f"send_{media.kind}")

    # --- The Stop button ----------------------------------------------------------------------

    def mark_streaming(self, chat_id: str, on: bool) -> None:
        """Start or stop showing the Stop button on the reply streaming in ``chat_id``
        (no effect unless the transport was built with ``stop_button=True``)."""
        if on and self.stop_button:
            self._streaming.add(chat_id)
            self._stop_messages.pop(chat_id, None)
        else:
            self._streaming.discard(chat_id)

    async def clear_stop_button(self, chat_id: str) -> None:
        """Stop streaming in ``chat_id`` and remove the button if a message still shows it."""
        self.mark_streaming(chat_id, False)
        message_id = self._stop_messages.get(chat_id)
        if message_id is not None:
            await self.edit_buttons(chat_id, message_id, None)

    async def edit_buttons(
        self, chat_id: str, message_id: str, markup: types.InlineKeyboardMarkup | None
    ) -> bool:
        """Put ``markup`` under one of our messages, replacing its buttons (None: remove
        them; the Stop button counts as removed either way). True if Telegram took it; a
        refusal (the message is gone, the buttons were already so, a long flood wait) is
        logged, not raised: buttons are a convenience, the text says what to type."""
        if self._stop_messages.get(chat_id) == message_id:
            del self._stop_messages[chat_id]
        try:
            await self._call(
                chat_id,
                "edit_message_reply_markup",
                lambda: self.client.edit_message_reply_markup(
                    int(chat_id), int(message_id), reply_markup=markup
                ),
            )
        except (RPCError, FloodWaitTooLong) as error:
            name = _error_name(error) if isinstance(error, RPCError) else str(error)
            logger.info("editing the buttons in chat %s failed: %s", chat_id, name)
            return False
        return True

    def _wants_stop_button(self, chat_id: str) -> bool:
        return chat_id in self._streaming and chat_id not in self._stop_messages

    @staticmethod
    def _stop_markup(chat_id: str) -> types.InlineKeyboardMarkup:
        button = types.InlineKeyboardButton(
            STOP_BUTTON_TEXT, callback_data=f"{STOP_CALLBACK_PREFIX}{chat_id}"
        )
        return types.InlineKeyboardMarkup([[button]])

    # --- One call to Telegram -------------------------------------------------------------

    async def _optional(
        self, chat_id: str, operation: str, action: Callable[[], Awaitable[object]]
    ) -> None:
        """Run ``action`` if the limiter has a slot within ``OPTIONAL_MAX_WAIT``; else, or on
        a FloodWait, drop it (a request that only shows a passing state gives way)."""
        admitted = await self.limiter.acquire(chat_id, per_chat=False, max_wait=OPTIONAL_MAX_WAIT)
        if not admitted:
            logger.debug("telegram %s in chat %s dropped: the budget is tight", operation, chat_id)
            return
        try:
            await action()
        except _FLOOD_ERRORS as error:
            logger.info(
                "telegram %s in chat %s dropped: flood wait %s s",
                operation,
                chat_id,
                _wait_seconds(error),
            )

    async def _call(
        self,
        chat_id: str,
        operation: str,
        action: Callable[[], Awaitable[T]],
        *,
        per_chat: bool = True,
        html: bool = False,
    ) -> T:
        """Run ``action`` within the limiter (``per_chat=False``: the overall budget only),
        honouring one FloodWait (see the module docstring). With ``html``, an entity error
        becomes FormattingRejected."""
        for attempt in (1, 2):
            await self.limiter.acquire(chat_id, per_chat=per_chat)
            try:
                return await action()
            except _FLOOD_ERRORS as error:
                seconds = _wait_seconds(error)
                if attempt == 2 or seconds > self.flood_wait_threshold:
                    raise FloodWaitTooLong(seconds, operation) from error
                logger.info("telegram %s in chat %s: flood wait %s s", operation, chat_id, seconds)
                await self.sleep(seconds)
            except errors.BadRequest as error:
                if html and _is_formatting_error(error):
                    raise FormattingRejected(_error_name(error)) from error
                raise
        raise AssertionError("unreachable: the second attempt returns or raises")


def _random_id() -> int:
    """``Client.rnd_id`` for the transport's client: the random id chosen for this task's send,
    else a new one (see the module docstring)."""
    chosen = _RANDOM_ID.get()
    return chosen if chosen is not None else secrets.randbits(63)


def _reply_parameters(reply_to: str | None) -> types.ReplyParameters | None:
    """Reply to the Telegram message a pipeline message id names (an edit's key included)."""
    if not reply_to:
        return None
    return types.ReplyParameters(message_id=telegram_message_id(reply_to))


def _is_telegram_html(text: str) -> bool:
    return normalize_html(text) == text


def _is_formatting_error(error: RPCError) -> bool:
    if error.ID in _FORMATTING_ERRORS:
        return True
    described = str(error.value or "").upper()  # errors this kurigram does not know by name
    return "ENTIT" in described or "PARSE" in described


def _wait_seconds(error: RPCError) -> int:
    value = error.value
    return value if isinstance(value, int) else 0


def _error_name(error: RPCError) -> str:
    return error.ID or type(error).__name__


def _message_id(sent: types.Message | None, operation: str) -> str:
    if sent is None:
        raise IntegrationError("telegram", operation, "Telegram returned no message")
    return str(sent.id)
