"""``/ws/chat/``: the browser chat's WebSocket, one connection per open page.

Who: only signed-in users. An anonymous socket is accepted and closed at once with code 4401
(closed before the handshake, a browser would see 1006 and no reason to sign in). Each
message re-checks the session: after signing out elsewhere, or once staff deactivated the
account, the message gets an ``error`` and the socket closes with 4401.

Which chat: every page of one user is the same chat, ``user-<user id>`` on the ``web``
transport, so tabs and devices share one conversation (and ``/new`` ends it for all). A
reply streams to the page that sent the message; other pages see it when they reload.

The page sends ``{"type": "message", "text": "…", "id": "<client id>"}`` (the id is
optional; it becomes the message's dedup key), and ``{"type": "decide", "action_id": N,
"decision": "confirm"|"cancel", "id": …}`` when a Confirm or Cancel button is pressed. The
server sends:

* ``history`` (on connect: ``messages``, a list of ``{role, text, status}``) and ``status``
  (``workspace``: ``{slug, name}``; on connect and after every reply);
* per message: ``ack``, then ``typing``, ``delta`` (text to append) or ``reset`` (the whole
  text so far, when an attempt restarted), and finally ``reply`` (``text``, ``status``:
  answered, rejected, deferred, failed or ignored, ``reason``, and ``pending_action_id``
  when the answer proposes a change, for its Confirm/Cancel buttons). Each carries the
  ``id``. A rejected, deferred or failed ``reply`` has the pipeline's user-facing words as
  its text. History entries carry ``pending_action_id`` too, while the change still waits;
* per decision: ``ack``, then ``decided`` (``action_id``, ``text``: the outcome, shown as an
  assistant message, ``settled``: the request no longer waits). Decisions queue with the
  messages, so one never overtakes the answer it is about;
* ``reply`` with ``reason: "deferred"`` and no preceding events: an answer that waited in
  the outbox (the message was deferred while Claude was unavailable);
* ``error`` (``message`` in plain words, ``id`` when it concerns one message): invalid JSON,
  an unknown type, an empty text, too many messages too fast (``TokenBucket``), or a crash.

A frame larger than ``protocol.frame_limit_bytes`` closes the socket with code 4413, after an
``error`` event (Daphne does not pass a close reason on).

A connection answers its messages one at a time, in order (a queue and one worker task). A
page that closes stops nothing: the worker finishes what was acknowledged, so every answer
is stored and shown in the history next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from aisystem.chat.protocol import (
    CLOSE_FRAME_TOO_LARGE,
    CLOSE_UNAUTHENTICATED,
    ClientDecision,
    ClientMessage,
    FrameError,
    TokenBucket,
    frame_limit_bytes,
    frame_parse,
)
from aisystem.chat.selectors import chat_session_valid, chat_snapshot, chat_workspace
from aisystem.chat.services import chat_decide, chat_external_id, web_outbox_take
from aisystem.chat.transport import Event, WebSocketTransport
from aisystem.metrics.instruments import websocket_closed, websocket_opened
from aisystem.models import ChatType, Transport
from pipeline.processor import shared_processor
from pipeline.types import InboundMessage

logger = logging.getLogger(__name__)

RATE_CAPACITY = 10  # messages at once …
RATE_PER_SECONDS = 10.0  # … refilled over this many seconds
QUEUE_LIMIT = 20  # acknowledged messages waiting for their turn
OUTBOX_POLL_SECONDS = 10.0

SLOW_DOWN = "Slow down: you're sending messages too fast. Wait a few seconds and try again."
QUEUE_FULL = "Too many messages are waiting for an answer. Wait for them, then try again."
BINARY_FRAME = "Send messages as JSON text."
FRAME_TOO_LARGE = "That message is too large to send ({size:,} bytes; the limit is {limit:,})."
PROCESSING_FAILED = "Something went wrong while answering this message. Please try again."
DECISION_FAILED = "Something went wrong while handling that button. Please try again."
SIGNED_OUT = "You have been signed out. Sign in again to go on chatting."
LOAD_FAILED = "The conversation could not be loaded. Reload the page to try again."

# Answers keep running after their page closed (they are stored); holding the worker tasks
# here keeps them from being garbage-collected meanwhile.
_WORKERS: set[asyncio.Task[None]] = set()


async def chat_workers_settle() -> None:
    """Wait until every connection's acknowledged messages, of this event loop, are answered
    (tests, shutdown)."""
    loop = asyncio.get_running_loop()
    while mine := [task for task in _WORKERS if task.get_loop() is loop]:
        await asyncio.gather(*mine, return_exceptions=True)


@dataclass(frozen=True)
class ChatUser:
    """The signed-in user, read once at connect."""

    id: int
    username: str
    name: str

    @property
    def chat_id(self) -> str:
        return chat_external_id(self.id)


class ChatConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    user: ChatUser | None = None
    closed = True
    counted = False  # in aisystem_websocket_connections

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = ChatUser(
            id=user.pk,
            username=user.get_username(),
            name=user.get_full_name().strip() or user.get_username(),
        )
        session = self.scope.get("session")
        self.session_key: str | None = getattr(session, "session_key", None)
        self.bucket = TokenBucket(capacity=RATE_CAPACITY, per_seconds=RATE_PER_SECONDS)
        self.queue: asyncio.Queue[ClientMessage | ClientDecision | None] = asyncio.Queue()
        self.closed = False
        await self.accept()
        worker = asyncio.create_task(self._work(), name=f"web-chat:{self.user.chat_id}")
        _WORKERS.add(worker)
        worker.add_done_callback(_WORKERS.discard)
        await self._send_snapshot()
        self.poller = asyncio.create_task(self._poll_outbox())
        websocket_opened("chat")
        self.counted = True

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self.counted = False
            websocket_closed("chat")
        if self.user is None:
            return
        self.closed = True
        self.queue.put_nowait(None)  # the worker ends after what was acknowledged
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    # --- Inbound frames ----------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None or self.closed:
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        limit = frame_limit_bytes(settings.PIPELINE["MAX_INPUT_CHARS"])
        if size > limit:
            await self._emit(_error(FRAME_TOO_LARGE.format(size=size, limit=limit), None))
            self.closed = True
            await self.close(code=CLOSE_FRAME_TOO_LARGE)
            return
        if text_data is None:
            await self._emit({"type": "error", "message": BINARY_FRAME})
            return
        parsed = frame_parse(text_data)
        if isinstance(parsed, FrameError):
            await self._emit(_error(parsed.message, parsed.client_id))
            return
        await self._enqueue(parsed)

    async def _enqueue(self, message: ClientMessage | ClientDecision) -> None:
        if not self.bucket.take():
            await self._emit(_error(SLOW_DOWN, message.client_id))
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            await self._emit(_error(QUEUE_FULL, message.client_id))
            return
        await self._emit({"type": "ack", "id": message.client_id})
        self.queue.put_nowait(message)

    # --- Answering ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while (item := await self.queue.get()) is not None:
            if isinstance(item, ClientDecision):
                await self._decide(item)
            else:
                await self._answer(item)

    async def _still_signed_in(self, client_id: str) -> bool:
        """Checked per message, not only at connect: signing out elsewhere or a deactivated
        account ends an open page too (one cheap read next to a model call). False after
        telling the page and closing the socket."""
        assert self.user is not None
        if await database_sync_to_async(chat_session_valid)(
            user_id=self.user.id, session_key=self.session_key
        ):
            return True
        await self._emit(_error(SIGNED_OUT, client_id))
        if not self.closed:
            self.closed = True
            await self.close(code=CLOSE_UNAUTHENTICATED)
        return False

    async def _decide(self, decision: ClientDecision) -> None:
        """A Confirm/Cancel press, decided as the socket's user (``services.chat_decide``)."""
        assert self.user is not None
        if not await self._still_signed_in(decision.client_id):
            return
        try:
            outcome = await sync_to_async(chat_decide, thread_sensitive=False)(
                user_id=self.user.id, action_id=decision.action_id, decision=decision.decision
            )
        except Exception:
            logger.exception("browser chat: deciding request %s failed", decision.action_id)
            await self._emit(_error(DECISION_FAILED, decision.client_id))
            return
        await self._emit(
            {
                "type": "decided",
                "id": decision.client_id,
                "action_id": outcome.action_id,
                "text": outcome.text,
                "settled": outcome.settled,
            }
        )

    async def _answer(self, message: ClientMessage) -> None:
        assert self.user is not None
        if not await self._still_signed_in(message.client_id):
            return
        transport = WebSocketTransport(self._emit, client_id=message.client_id)
        inbound = InboundMessage(
            transport=Transport.WEB,
            chat_id=self.user.chat_id,
            chat_type=ChatType.WEB,
            message_id=message.client_id,
            sender_id=str(self.user.id),
            sender_username=self.user.username,
            sender_name=self.user.name,
            chat_title=f"{self.user.username} (browser)",
            # When its turn came, not when it arrived: a message that queued behind slow
            # answers is not stale, and the gate would otherwise drop it silently.
            sent_at=timezone.now(),
            text=message.text,
            user_id=self.user.id,
        )
        try:
            result = await shared_processor().process_message(inbound, transport)
        except Exception:
            logger.exception("browser chat: processing a message failed")
            await self._emit(_error(PROCESSING_FAILED, message.client_id))
            return
        reply: Event = {
            "type": "reply",
            "id": message.client_id,
            "text": result.reply,
            "status": result.status,
            "reason": result.reason,
        }
        if result.pending_action_id is not None:
            reply["pending_action_id"] = result.pending_action_id
        await self._emit(reply)
        await self._send_status()

    # --- Server-initiated events -------------------------------------------------------------

    async def _send_snapshot(self) -> None:
        assert self.user is not None
        try:
            snapshot = await database_sync_to_async(chat_snapshot)(
                chat_external_id=self.user.chat_id
            )
        except Exception:
            logger.exception("browser chat: loading the conversation failed")
            await self._emit({"type": "error", "message": LOAD_FAILED})
            return
        history = [asdict(entry) for entry in snapshot.history]
        await self._emit({"type": "history", "messages": history})
        await self._emit({"type": "status", "workspace": asdict(snapshot.workspace)})

    async def _send_status(self) -> None:
        if self.closed or self.user is None:
            return
        try:
            workspace = await database_sync_to_async(chat_workspace)(
                chat_external_id=self.user.chat_id
            )
        except Exception:
            logger.exception("browser chat: reading the workspace failed")
            return
        await self._emit({"type": "status", "workspace": asdict(workspace)})

    async def _poll_outbox(self) -> None:
        assert self.user is not None
        while not self.closed:
            try:
                replies = await database_sync_to_async(web_outbox_take)(
                    chat_external_id=self.user.chat_id, now=timezone.now()
                )
            except Exception:
                logger.exception("browser chat: taking outbox replies failed")
                replies = []
            for reply in replies:
                await self._emit(
                    {
                        "type": "reply",
                        "id": reply.reply_to or None,
                        "text": reply.text,
                        "status": "answered",
                        "reason": "deferred",
                    }
                )
            await asyncio.sleep(OUTBOX_POLL_SECONDS)

    async def _emit(self, event: Event) -> None:
        """Send one event; after the page went away, nothing (the answer is stored anyway)."""
        if self.closed:
            return
        try:
            await self.send_json(event)
        except Exception:
            # The socket went away before ``disconnect`` ran: stop sending, keep answering.
            logger.info("browser chat: the page is gone; events are no longer sent")
            self.closed = True

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        # Text as is, not \u-escaped: replies are prose, often not in English.
        return json.dumps(content, ensure_ascii=False)


def _error(message: str, client_id: str | None) -> Event:
    event: Event = {"type": "error", "message": message}
    if client_id is not None:
        event["id"] = client_id
    return event
