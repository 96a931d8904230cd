"""The bridge: one Telegram account's client, feeding the pipeline and draining the outbox.

Life of a run (``TelegramBridge.run``):

1. connect (retrying network failures with exponential backoff; a revoked or invalid session
   is recorded, announced with an alert event, and ends the run: it never loops);
2. messages left "processing" by a process that died are marked interrupted, and every
   interrupted message is fetched again from Telegram and resumed (once: see the store);
3. updates that arrived while the bridge was down come in through Pyrogram's gap recovery
   (the update state is kept in the database, see ``storage``) while the client starts, so the
   handlers are registered first and hold them until step 2 is done and intake opens; those
   older than the start are catch-up: at most ``catch_up_minutes`` old and
   ``catch_up_messages`` per chat, deduplicated by the pipeline's dedup key;
4. each message goes to the dispatcher (chats concurrently, each chat in order, bounded,
   with backpressure); ``/cancel`` and the Stop button bypass the chat's queue;
5. on SIGTERM/SIGINT: intake stops, in-flight messages get ``shutdown_deadline_seconds`` to
   finish, the ones cut short are marked interrupted, the outbox sender finishes the delivery
   in progress, the client stops, the exit code is 0. Messages still queued behind them, or
   arriving after the signal, are not recorded and do not come back (see the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from pyrogram import Client, errors, filters, types
from pyrogram.errors.rpc_error import RPCError
from pyrogram.handlers import CallbackQueryHandler, EditedMessageHandler, MessageHandler

from aisystem.models import TelegramSession
from pipeline import recording
from pipeline.agent_request import AttachmentLimits
from pipeline.commands import COMMANDS, parse_command
from pipeline.processor import UnifiedMessageProcessor
from pipeline.response_manager import ResponseManager
from pipeline.types import InboundMessage
from telegram_bridge.adapter import BridgeIdentity, inbound_from_message, media_group_key
from telegram_bridge.albums import MediaGroupBuffer
from telegram_bridge.config import BridgeConfig
from telegram_bridge.dispatcher import ChatDispatcher, DispatcherClosed
from telegram_bridge.heartbeat import Heartbeat, HeartbeatSnapshot
from telegram_bridge.outbox import OutboxSender
from telegram_bridge.shutdown import ShutdownController
from telegram_bridge.transport import OutboundLimiter, TelegramTransport, stop_callback_chat

logger = logging.getLogger(__name__)

TRANSPORT = "telegram"
EXIT_OK, EXIT_REVOKED = 0, 3
_REVOKED = (errors.Unauthorized,)
_CONNECT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# How long the heartbeat, outbox and storage loops get to end by themselves at a stop.
BACKGROUND_GRACE_SECONDS = 10.0


class SessionRevoked(Exception):
    """Telegram no longer accepts this session; a new ``telegram_login`` is needed."""


class TelegramBridge:
    def __init__(
        self,
        *,
        session: TelegramSession,
        client: Client,
        config: BridgeConfig,
        processor: UnifiedMessageProcessor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.client = client
        self.config = config
        self.processor = processor or UnifiedMessageProcessor()
        self.sleep = sleep
        self.dispatcher = ChatDispatcher(
            max_concurrency=config.max_concurrency, max_pending=config.max_pending
        )
        self.albums = MediaGroupBuffer(self._submit, delay=config.album_wait_seconds)
        self.limits = AttachmentLimits.from_settings(settings.PIPELINE)
        self.heartbeat = Heartbeat(session.pk)
        self.shutdown = ShutdownController()
        self.me = BridgeIdentity(user_id=0)
        self.transport: TelegramTransport | None = None
        self.started_at = timezone.now()
        self.last_update_at: datetime | None = None
        self.in_flight: set[tuple[str, str]] = set()
        self.cut_short: set[tuple[str, str]] = set()  # jobs cancelled by the shutdown deadline
        self.intake_open = False
        self._intake_opened = asyncio.Event()
        self._catch_up_counts: Counter[str] = Counter()

    # --- Updates --------------------------------------------------------------------------------

    def register_handlers(self) -> None:
        self.client.add_handler(MessageHandler(self.on_message, ~filters.service))
        self.client.add_handler(EditedMessageHandler(self.on_message, ~filters.service))
        self.client.add_handler(CallbackQueryHandler(self.on_callback))

    async def on_message(self, client: Client, message: types.Message) -> None:
        """Every new or edited message: adapted, then queued in its chat's order."""
        self.last_update_at = timezone.now()
        if not self.intake_open and not await self._intake_opens():
            chat_id = message.chat.id if message.chat else None
            logger.warning("stopping: message %s in chat %s not taken", message.id, chat_id)
            return
        catch_up = self._catch_up(message)
        if catch_up is None:
            return
        try:
            inbound = await inbound_from_message(
                client, message, me=self.me, limits=self.limits, catch_up=catch_up
            )
        except Exception:
            logger.exception("could not read message %s", message.id)
            return
        if inbound is not None:
            await self.albums.add(inbound, media_group_key(message))

    def open_intake(self) -> None:
        """Start taking messages (``_after_connect`` does, once resuming is done)."""
        self.intake_open = True
        self._intake_opened.set()

    async def _intake_opens(self) -> bool:
        """Wait while intake is not open yet: gap recovery hands over the updates missed
        while the bridge was down during ``client.start()``, before the bridge is ready for
        them. False once a stop is requested."""
        if self.shutdown.stopping.is_set():
            return False
        waits = [
            asyncio.ensure_future(self._intake_opened.wait()),
            asyncio.ensure_future(self.shutdown.stopping.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self.intake_open and not self.shutdown.stopping.is_set()

    def _catch_up(self, message: types.Message) -> bool | None:
        """False: a live message. True: one that arrived while the bridge was down.
        None: too old or beyond the per-chat budget of catch-up (logged)."""
        sent_at = _aware(message.edit_date or message.date)
        if sent_at >= self.started_at - timedelta(seconds=5):
            return False
        if timezone.now() - sent_at > timedelta(minutes=self.config.catch_up_minutes):
            logger.info("catch-up: skipping message %s, older than the look-back", message.id)
            return None
        chat = str(message.chat.id) if message.chat else ""
        self._catch_up_counts[chat] += 1
        if self._catch_up_counts[chat] > self.config.catch_up_messages:
            logger.info("catch-up: skipping message %s, over the per-chat limit", message.id)
            return None
        return True

    async def _submit(self, inbound: InboundMessage) -> None:
        key = (inbound.chat_id, inbound.message_id)
        command = parse_command(inbound.text, inbound.assistant_username)
        urgent = command is not None and command.name == "cancel"

        async def job() -> None:
            self.in_flight.add(key)
            try:
                await self._process(inbound, streaming=command is None)
            except asyncio.CancelledError:
                self.cut_short.add(key)  # the drain deadline: _stop marks it interrupted
                raise
            finally:
                self.in_flight.discard(key)

        try:
            await self.dispatcher.submit(inbound.chat_id, job, bypass_order=urgent)
        except DispatcherClosed:
            logger.warning("stopping: message %s in chat %s not taken", *key[::-1])

    async def _process(self, inbound: InboundMessage, *, streaming: bool) -> None:
        transport = self._transport()
        if streaming:
            transport.mark_streaming(inbound.chat_id, True)
        try:
            result = await self.processor.process_message(inbound, transport)
            logger.info(
                "message %s in chat %s: %s %s",
                inbound.message_id,
                inbound.chat_id,
                result.status,
                result.reason,
            )
        finally:
            if streaming:
                await transport.clear_stop_button(inbound.chat_id)

    async def on_callback(self, client: Client, query: types.CallbackQuery) -> None:
        """The Stop button: cancel the chat's answer in flight."""
        chat_id = stop_callback_chat(query.data)
        if chat_id is None:
            await query.answer()
            return
        stopped = self.processor.cancel_chat(TRANSPORT, chat_id)
        await query.answer("Stopping…" if stopped else "Nothing to stop.")

    def _transport(self) -> TelegramTransport:
        if self.transport is None:
            raise RuntimeError("the bridge is not connected")
        return self.transport

    # --- Running ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until a signal (exit 0) or a revoked session (EXIT_REVOKED)."""
        self.shutdown.install()
        try:
            return await self._run()
        finally:
            self.shutdown.restore()

    async def _run(self) -> int:
        # Before the client starts: its gap recovery hands over missed updates during start.
        self.register_handlers()
        await self._beat(TelegramSession.State.CONNECTING)
        try:
            connected = await self._connect()
        except SessionRevoked as error:
            await self._beat(TelegramSession.State.REVOKED)
            logger.error("%s", error)
            return EXIT_REVOKED
        if not connected:  # stopped while still connecting
            await self._beat(TelegramSession.State.STOPPED)
            return EXIT_OK
        await self._after_connect()
        background = self._start_background()
        try:
            await self.shutdown.stopping.wait()
        finally:
            await self._stop(background)
        return EXIT_OK

    async def _connect(self) -> bool:
        """Start the client; False if a stop was requested first. Raises SessionRevoked."""
        for attempt in range(10**9):
            try:
                await self.client.start()
                return True
            except _REVOKED as error:
                raise SessionRevoked(
                    f"Telegram refused session '{self.session.name}' ({error.ID}): sign in "
                    "again with python manage.py telegram_login."
                ) from None
            except (OSError, TimeoutError, errors.InternalServerError) as error:
                delay = _CONNECT_BACKOFF[min(attempt, len(_CONNECT_BACKOFF) - 1)]
                logger.warning("connecting failed (%s); retrying in %.0f s", error, delay)
                await self._beat(TelegramSession.State.DISCONNECTED)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.shutdown.stopping.wait(), timeout=delay)
                if self.shutdown.stopping.is_set():
                    return False
        return False

    async def _after_connect(self) -> None:
        me = self.client.me
        assert me is not None
        self.me = BridgeIdentity.from_user(me)
        self.transport = TelegramTransport(
            self.client,
            limiter=OutboundLimiter.for_account(is_bot=self.me.is_bot, sleep=self.sleep),
            flood_wait_threshold=self.config.flood_wait_max_seconds,
            sleep=self.sleep,
            stop_button=self.me.is_bot,
        )
        if self.me.is_bot:
            await self._register_commands()
        await self._beat(TelegramSession.State.CONNECTED)
        # Before intake opens: resuming first marks what a dead process left "processing"
        # as interrupted, which must not catch messages this process has started.
        await self.resume_interrupted()
        self.open_intake()
        logger.info("bridge connected as @%s", self.me.username or self.me.user_id)

    async def _register_commands(self) -> None:
        commands = [
            types.BotCommand(name, description[:256])
            for name, description in COMMANDS.items()
            if name.isalnum()
        ]
        try:
            await self.client.set_bot_commands(commands)
        except RPCError as error:
            logger.warning("registering the bot commands failed: %s", error.ID)

    async def resume_interrupted(self) -> int:
        """Fetch and resubmit messages interrupted by a stop or a crash. Returns how many."""
        await sync_to_async(recording.messages_orphaned_interrupt)(transport=TRANSPORT)
        pending = await sync_to_async(recording.messages_interrupted)(transport=TRANSPORT)
        resumed = 0
        for chat_id, message_id in pending:
            try:
                message = await self.client.get_messages(int(chat_id), int(message_id))
            except (RPCError, ValueError, KeyError) as error:
                logger.warning("cannot fetch interrupted message %s: %s", message_id, error)
                continue
            if not isinstance(message, types.Message) or message.empty:
                continue
            inbound = await inbound_from_message(
                self.client, message, me=self.me, limits=self.limits, catch_up=True
            )
            if inbound is not None:
                await self._submit(inbound)
                resumed += 1
        return resumed

    def _start_background(self) -> list[asyncio.Task[None]]:
        stop = self.shutdown.stopping
        return [
            asyncio.create_task(
                self.heartbeat.run(stop, self.config.heartbeat_seconds, snapshot=self._snapshot),
                name="heartbeat",
            ),
            asyncio.create_task(
                OutboxSender().run(stop, transport=self._transport(), responses=ResponseManager()),
                name="outbox",
            ),
            asyncio.create_task(self._save_storage_periodically(stop), name="storage"),
        ]

    async def _save_storage_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await self.client.storage.save()  # type: ignore[no-untyped-call]

    async def _stop(self, background: list[asyncio.Task[None]]) -> None:
        self.intake_open = False
        self.shutdown.request_stop()  # handlers waiting for intake give up
        started = time.monotonic()
        await self.albums.flush_all()
        unfinished = await self.dispatcher.drain(self.config.shutdown_deadline_seconds)
        if self.in_flight or self.cut_short or unfinished:
            keys = sorted(self.in_flight | self.cut_short)
            marked = await sync_to_async(recording.messages_mark_interrupted)(
                transport=TRANSPORT, keys=keys
            )
            logger.warning("stopped with %d message(s) unfinished; they resume at start", marked)
        # The loops end by themselves once stopping is set; the outbox sender first finishes
        # the delivery in progress. Cancelled mid-delivery, an item would stay "sending" and
        # go out again, whole, at the next start.
        if background:
            _, late = await asyncio.wait(background, timeout=BACKGROUND_GRACE_SECONDS)
            for task in late:
                task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.client.stop()
        await self._beat(TelegramSession.State.STOPPED)
        logger.info("bridge stopped in %.1f s", time.monotonic() - started)

    def _snapshot(self) -> HeartbeatSnapshot:
        lag = None
        if self.last_update_at is not None:
            lag = (timezone.now() - self.last_update_at).total_seconds()
        return HeartbeatSnapshot(
            state=TelegramSession.State.CONNECTED,
            account_user_id=self.me.user_id or None,
            account_username=self.me.username,
            last_update_at=self.last_update_at,
            lag_seconds=lag,
            in_flight=self.dispatcher.in_flight,
        )

    async def _beat(self, state: str) -> None:
        try:
            await self.heartbeat.record(
                HeartbeatSnapshot(
                    state=state,
                    account_user_id=self.me.user_id or None,
                    account_username=self.me.username,
                    in_flight=self.dispatcher.in_flight,
                )
            )
        except Exception:
            logger.exception("recording the bridge state failed")


def _aware(moment: datetime | None) -> datetime:
    """Pyrogram gives naive local times (``datetime.fromtimestamp``): make them aware."""
    return timezone.now() if moment is None else moment.astimezone(UTC)
