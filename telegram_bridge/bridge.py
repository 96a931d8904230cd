"""The bridge: one Telegram account's client, feeding the pipeline and draining the outbox.

Life of a run (``TelegramBridge.run``):

1. connect (retrying network failures with exponential backoff; a revoked or invalid session
   is recorded, announced with an alert event, and ends the run: it never loops);
2. messages left "processing" by a process that died are marked interrupted, and every
   interrupted message is fetched again from Telegram and resumed (once: see the store); an
   answer it had begun, or delivered, is finished in place or recorded as it is, never sent
   a second time (``journal``);
3. updates that arrived while the bridge was down come in through Pyrogram's gap recovery
   (the update state is kept in the database, see ``storage``) while the client starts, so the
   handlers are registered first and hold them until step 2 is done and intake opens; those
   older than the start are catch-up: at most ``catch_up_minutes`` old and
   ``catch_up_messages`` per chat, deduplicated by the pipeline's dedup key;
4. each message goes to the dispatcher (chats concurrently, each chat in order, bounded,
   with backpressure); ``/cancel`` and the Stop button bypass the chat's queue (the button
   stops a reply only for the person who asked for it); an edit is a message of its own,
   answered if it changes the text (see ``adapter.message_key`` and ``records``); a post in
   a broadcast channel is ignored (recorded) unless staff enabled the channel
   (``Chat.channel_enabled``, see ``records``); an answer that proposes a change gets
   Confirm/Cancel buttons (bots only; see ``decisions``);
5. on SIGTERM/SIGINT: intake stops, in-flight messages get ``shutdown_deadline_seconds`` to
   finish, the ones cut short are marked interrupted, the outbox sender finishes the delivery
   in progress, the client stops, the exit code is 0. Messages still queued behind them, or
   arriving after the signal, are stored as interrupted (``records``): Telegram will not send
   them again, so the next start fetches and answers them, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from pyrogram import Client, filters, types
from pyrogram.errors.rpc_error import RPCError
from pyrogram.handlers import CallbackQueryHandler, EditedMessageHandler, MessageHandler

from aisystem.models import TelegramSession
from pipeline import outcomes
from pipeline.agent_request import AttachmentLimits
from pipeline.commands import parse_command
from pipeline.processor import UnifiedMessageProcessor
from pipeline.response_manager import ResponseManager
from pipeline.types import InboundMessage, ProcessingResult
from telegram_bridge import records
from telegram_bridge.adapter import (
    BridgeIdentity,
    inbound_from_message,
    is_edit_key,
    media_group_key,
    telegram_message_id,
)
from telegram_bridge.albums import MediaGroupBuffer
from telegram_bridge.catch_up import CatchUpWindow
from telegram_bridge.config import BridgeConfig
from telegram_bridge.connection import SessionRevoked, bot_commands_register, client_connect
from telegram_bridge.decisions import (
    decision_callback_parse,
    decision_handle,
    decision_offer,
)
from telegram_bridge.dispatcher import ChatDispatcher, DispatcherClosed
from telegram_bridge.heartbeat import Heartbeat, HeartbeatSnapshot
from telegram_bridge.lease import AccountLease, LeaseLost
from telegram_bridge.outbox import OutboxSender
from telegram_bridge.replies import StopButtonResponses
from telegram_bridge.shutdown import ShutdownController
from telegram_bridge.transport import (
    OutboundLimiter,
    TelegramTransport,
    stop_callback_chat,
)
from telegram_bridge.unfinished import UnfinishedMessages

logger = logging.getLogger(__name__)

TRANSPORT = "telegram"
CHANNEL = "channel"  # a broadcast channel's chat type (see ``adapter``)
EXIT_OK, EXIT_REVOKED, EXIT_BUSY = 0, 3, 4
# How long the heartbeat, outbox and storage loops get to end by themselves at a stop.
BACKGROUND_GRACE_SECONDS = 10.0
NOT_YOURS_TO_STOP = "Only the person who asked can stop this reply."


async def _channel_post_taken(inbound: InboundMessage) -> bool:
    return await sync_to_async(records.channel_post_taken)(inbound, now=timezone.now())


class TelegramBridge:
    def __init__(
        self,
        *,
        session: TelegramSession,
        client: Client,
        config: BridgeConfig,
        processor: UnifiedMessageProcessor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``sleep`` and ``clock`` are the ones flood waits and the outbound limiter use (a
        test's sleep that does not wait needs a clock that moves by what it slept)."""
        self.session = session
        self.client = client
        # The adapter fetches the message a reply answers when it needs it; Pyrogram would
        # also fetch one for every message the bridge sends or edits (see ``adapter``).
        self.client.fetch_replies = False
        self.config = config
        self.processor = processor or UnifiedMessageProcessor(responses=StopButtonResponses())
        self.sleep = sleep
        self.clock = clock
        self.dispatcher = ChatDispatcher(
            max_concurrency=config.max_concurrency, max_pending=config.max_pending
        )
        self.albums = MediaGroupBuffer(self._submit, delay=config.album_wait_seconds)
        self.limits = AttachmentLimits.from_settings(settings.PIPELINE)
        self.lease = AccountLease(session, heartbeat_seconds=config.heartbeat_seconds)
        self.heartbeat = Heartbeat(session.pk, runner=self.lease.runner)
        self.shutdown = ShutdownController()
        self.me = BridgeIdentity(user_id=0)
        self.transport: TelegramTransport | None = None
        self.started_at = timezone.now()
        self.last_update_at: datetime | None = None
        self.unfinished = UnfinishedMessages(TRANSPORT)
        self.requesters: dict[str, str] = {}  # chat id -> sender of the reply streaming there
        self.intake_open = False
        self._intake_opened = asyncio.Event()
        self.catch_up = CatchUpWindow(
            started_at=self.started_at,
            minutes=config.catch_up_minutes,
            per_chat=config.catch_up_messages,
        )

    # --- Updates --------------------------------------------------------------------------------

    def register_handlers(self) -> None:
        self.client.add_handler(MessageHandler(self.on_message, ~filters.service))
        self.client.add_handler(EditedMessageHandler(self.on_edited_message, ~filters.service))
        self.client.add_handler(CallbackQueryHandler(self.on_callback))

    async def on_message(self, client: Client, message: types.Message) -> None:
        """Every new or edited message: adapted, then queued in its chat's order."""
        self.last_update_at = timezone.now()
        if not self.intake_open and not await self._intake_opens():
            await self._record_not_taken(message)
            return
        catch_up = self.catch_up.classify(message)
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

    async def on_edited_message(self, client: Client, message: types.Message) -> None:
        """An edit: handled like a new message under its own key, unless it is an echo of
        one of our own messages (a user account sees its streamed edits) or a hidden edit
        (Telegram's flag for changes that are not the sender's, such as reactions)."""
        if message.outgoing or message.edit_hidden:
            return
        if message.from_user is not None and message.from_user.id == self.me.user_id:
            return
        await self.on_message(client, message)

    async def _record_not_taken(self, message: types.Message) -> None:
        """A message that came after intake closed: stored as interrupted (see ``records``)."""
        try:
            inbound = await inbound_from_message(
                self.client, message, me=self.me, limits=self.limits, download=False
            )
        except Exception:
            logger.exception("could not read message %s", message.id)
            return
        if inbound is not None:
            await self.unfinished.refused(inbound)

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

    async def _submit(self, inbound: InboundMessage) -> None:
        command = parse_command(inbound.text, inbound.assistant_username)
        urgent = command is not None and command.name == "cancel"

        async def job() -> None:
            cut_short = False
            try:
                await self._process(inbound, streaming=command is None)
            except asyncio.CancelledError:
                cut_short = True  # by the drain deadline: it stays for _stop to store
                raise
            finally:
                if not cut_short:
                    self.unfinished.finished(inbound)

        self.unfinished.taken(inbound)
        try:
            await self.dispatcher.submit(inbound.chat_id, job, bypass_order=urgent)
        except DispatcherClosed:
            await self.unfinished.refused(inbound)

    async def _process(self, inbound: InboundMessage, *, streaming: bool) -> None:
        if inbound.is_edited and not await sync_to_async(records.edit_changes_text)(inbound):
            logger.info(
                "message %s in chat %s: an edit that changes nothing",
                inbound.message_id,
                inbound.chat_id,
            )
            return
        if inbound.chat_type == CHANNEL and not await _channel_post_taken(inbound):
            logger.info(
                "message %s in channel %s: ignored, the channel is not enabled",
                inbound.message_id,
                inbound.chat_id,
            )
            return
        transport = self._transport()
        if streaming:
            transport.mark_streaming(inbound.chat_id, True)
            self.requesters[inbound.chat_id] = inbound.sender_id
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
                self.requesters.pop(inbound.chat_id, None)
                await transport.clear_stop_button(inbound.chat_id)
        await self._offer_decision(inbound.chat_id, result)

    async def _offer_decision(self, chat_id: str, result: ProcessingResult) -> None:
        """After the Stop button came off, so the two never fight over a keyboard."""
        if self.me.is_bot:  # a user account's inline keyboard would be dropped
            await decision_offer(self._transport(), chat_id, result)

    async def on_callback(self, client: Client, query: types.CallbackQuery) -> None:
        """The Confirm/Cancel buttons (``decisions.decision_handle``) and the Stop button: it
        cancels the chat's answer in flight, if the person who pressed it is the one it
        answers (in a group anyone sees the button)."""
        press = decision_callback_parse(query.data)
        if press is not None:
            await decision_handle(query, press, self._transport(), self.processor.responses)
            return
        chat_id = stop_callback_chat(query.data)
        if chat_id is None:
            await query.answer()
            return
        requester = self.requesters.get(chat_id)
        if requester is None:
            await query.answer("Nothing to stop.")
            return
        if query.from_user is None or str(query.from_user.id) != requester:
            await query.answer(NOT_YOURS_TO_STOP)
            return
        stopped = self.processor.cancel_chat(TRANSPORT, chat_id)
        await query.answer("Stopping…" if stopped else "Nothing to stop.")

    def _transport(self) -> TelegramTransport:
        if self.transport is None:
            raise RuntimeError("the bridge is not connected")
        return self.transport

    # --- Running ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until a signal (exit 0) or a revoked session (EXIT_REVOKED). EXIT_BUSY when
        another bridge runs this account (see ``telegram_bridge.lease``), at the start or
        once it took over."""
        self.shutdown.install()
        try:
            if not await self.lease.claim():
                return EXIT_BUSY
            try:
                code = await self._run()
            finally:
                await self.lease.release()
            return EXIT_BUSY if self.lease.lost else code
        finally:
            self.shutdown.restore()

    def _lose_lease(self, error: LeaseLost) -> None:
        self.lease.lose(error)
        self.shutdown.request_stop()

    async def _run(self) -> int:
        # Before the client starts: its gap recovery hands over missed updates during start.
        self.register_handlers()
        await self._beat(TelegramSession.State.CONNECTING)
        try:
            connected = await client_connect(
                self.client,
                self.session.name,
                stopping=self.shutdown.stopping,
                on_failure=lambda: self._beat(TelegramSession.State.DISCONNECTED),
                backoff=self.config.connect_backoff_seconds,
            )
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

    async def _after_connect(self) -> None:
        me = self.client.me
        assert me is not None
        self.me = BridgeIdentity.from_user(me)
        self.transport = TelegramTransport(
            self.client,
            limiter=OutboundLimiter.for_account(
                is_bot=self.me.is_bot, clock=self.clock, sleep=self.sleep
            ),
            flood_wait_threshold=self.config.flood_wait_max_seconds,
            sleep=self.sleep,
            stop_button=self.me.is_bot,
        )
        if self.me.is_bot:
            await bot_commands_register(self.client)
        await self._beat(TelegramSession.State.CONNECTED)
        # Before intake opens: resuming first marks what a dead process left "processing"
        # as interrupted, which must not catch messages this process has started.
        await self.resume_interrupted()
        self.open_intake()
        logger.info("bridge connected as @%s", self.me.username or self.me.user_id)

    async def resume_interrupted(self) -> int:
        """Fetch and resubmit messages interrupted by a stop or a crash (each finishes what
        of its answer is on screen, see ``journal``). Returns how many."""
        await sync_to_async(outcomes.messages_mark_orphans_interrupted)(transport=TRANSPORT)
        pending = await sync_to_async(outcomes.messages_interrupted)(transport=TRANSPORT)
        resumed = 0
        for chat_id, key in pending:
            try:
                message = await self.client.get_messages(int(chat_id), telegram_message_id(key))
            except (RPCError, ValueError, KeyError) as error:
                logger.warning("cannot fetch interrupted message %s: %s", key, error)
                continue
            if not isinstance(message, types.Message) or message.empty:
                continue
            inbound = await inbound_from_message(
                self.client, message, me=self.me, limits=self.limits, catch_up=True
            )
            if inbound is not None:
                # Under the key it was stored with: the message may have been edited since
                # (its current text is what gets answered).
                await self._submit(replace(inbound, message_id=key, is_edited=is_edit_key(key)))
                resumed += 1
        return resumed

    def _start_background(self) -> list[asyncio.Task[None]]:
        stop = self.shutdown.stopping
        return [
            asyncio.create_task(self._heartbeat(stop), name="heartbeat"),
            asyncio.create_task(
                OutboxSender().run(stop, transport=self._transport(), responses=ResponseManager()),
                name="outbox",
            ),
            asyncio.create_task(self._save_storage_periodically(stop), name="storage"),
        ]

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        try:
            await self.heartbeat.run(stop, self.config.heartbeat_seconds, snapshot=self._snapshot)
        except LeaseLost as error:
            self._lose_lease(error)

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
        await self.dispatcher.drain(self.config.shutdown_deadline_seconds)
        kept = await self.unfinished.store()
        if kept:
            logger.warning("stopped with %d message(s) unfinished; they resume at start", kept)
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
        if self.lease.lost:  # the row is another bridge's now
            return
        try:
            await self.heartbeat.record(
                HeartbeatSnapshot(
                    state=state,
                    account_user_id=self.me.user_id or None,
                    account_username=self.me.username,
                    in_flight=self.dispatcher.in_flight,
                )
            )
        except LeaseLost as error:
            self._lose_lease(error)
        except Exception:
            logger.exception("recording the bridge state failed")
