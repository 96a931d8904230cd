"""Driving a ``TelegramBridge`` end to end in tests: ``World`` (one account on a fake server,
its session row, fake Claude, and what the user sees), ``running`` (``run()`` until a requested
stop) and waiting for outcomes (``until``, ``answered``, ``status``)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import QuerySet
from pyrogram import raw, utils

from aisystem.models import AccessAction, AccessRule, Direction, Message, TelegramSession
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from telegram_bridge.bridge import EXIT_OK, TelegramBridge
from telegram_bridge.client_state import DatabaseStorage
from telegram_bridge.config import BridgeConfig
from telegram_bridge.faketelegram import FakeTelegram, TelegramHarness
from telegram_bridge.faketelegram.builders import Chat, make_user, session_string
from telegram_bridge.outbox import outbox_enqueue
from telegram_bridge.replies import StopButtonResponses
from tests.conftest import PRIMARY_KEY

# Small deadlines and waits, so tests are quick.
CONFIG = BridgeConfig(
    max_concurrency=8,
    max_pending=100,
    shutdown_deadline_seconds=5,
    catch_up_minutes=60,
    catch_up_messages=200,
    flood_wait_max_seconds=5,
    album_wait_seconds=0.05,
    heartbeat_seconds=1,
    connect_backoff_seconds=(0.05, 0.1),
)
SendReaction = raw.functions.messages.SendReaction


async def _no_sleep(seconds: float) -> None:
    return None


@dataclass
class World:
    """One Telegram account on a fake server, its ``TelegramSession`` row, and fake Claude.
    ``bridge()`` makes a new bridge process; ``aclose()`` when done."""

    harness: TelegramHarness
    session: TelegramSession
    fake: FakeClaude
    sleeps: list[float] = field(default_factory=list)
    slept: float = 0.0
    claude_clients: list[ClaudeClient] = field(default_factory=list)

    @property
    def server(self) -> FakeTelegram:
        return self.harness.server

    async def sleep(self, seconds: float) -> None:
        """The bridge's sleep: recorded, not waited."""
        self.sleeps.append(seconds)
        self.slept += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        """The bridge's clock: real time plus what it slept (so the outbound limiter's slots
        are as far away as if the sleeps had been waited out)."""
        return time.monotonic() + self.slept

    def bridge(
        self, *, client_options: dict[str, Any] | None = None, **config: Any
    ) -> TelegramBridge:
        """A new bridge process, built as ``runbridge`` builds it (fresh client, database
        storage, gap recovery on, the bridge's response manager), with ``config`` over
        ``CONFIG`` and ``client_options`` for the ``Client``."""
        storage = DatabaseStorage(
            session_pk=self.session.pk, session_string=self.session.session_string
        )
        client = self.harness.new_client(
            storage_engine=storage, skip_updates=False, workers=2, **(client_options or {})
        )
        claude = ClaudeClient(
            base_url=self.fake.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep
        )
        self.claude_clients.append(claude)
        return TelegramBridge(
            session=self.session,
            client=client,
            config=replace(CONFIG, **config),
            processor=UnifiedMessageProcessor(client=claude, responses=StopButtonResponses()),
            sleep=self.sleep,
            clock=self.clock,
        )

    async def aclose(self) -> None:
        """Close the Claude clients: their HTTP connections belong to this event loop."""
        for claude in self.claude_clients:
            await claude.aclose()

    # What the user sees ------------------------------------------------------------------

    def screen(self, chat: Chat) -> list[str]:
        """The bot's messages in ``chat`` as they read now (after every edit), oldest first."""
        return [message.message for message in self.outgoing(chat)]

    def answers_to(self, chat: Chat, message_id: int) -> list[str]:
        """The bot's messages that reply to ``message_id``, as they read now."""
        return [
            message.message
            for message in self.outgoing(chat)
            if message.reply_to and message.reply_to.reply_to_msg_id == message_id
        ]

    def outgoing(self, chat: Chat) -> list[raw.types.Message]:
        return [
            message
            for _, message in sorted(self.server.messages.items())
            if message.out and utils.get_peer_id(message.peer_id) == chat.chat_id
        ]

    def reactions(self, chat: Chat) -> list[str | None]:
        return [
            request.reaction[0].emoticon if request.reaction else None
            for request in self.server.sent(SendReaction, chat.chat_id)
        ]

    def claude_texts(self) -> list[str]:
        """The text blocks of the last user turn of each Claude request."""
        texts = []
        for request in self.fake.requests:
            content = (request.body or {})["messages"][-1]["content"]
            blocks = [content] if isinstance(content, str) else content
            texts.append("\n".join(b if isinstance(b, str) else b.get("text", "") for b in blocks))
        return texts


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` (or the awaitable it returns) is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(bridge: TelegramBridge) -> AsyncIterator[TelegramBridge]:
    """``bridge.run()`` in a task; on exit a requested stop, which must end it with 0."""
    task = asyncio.create_task(bridge.run())
    await until(lambda: bridge.intake_open or task.done())
    if task.done():
        raise AssertionError(f"the bridge ended at start with {task.result()}")
    try:
        yield bridge
    finally:
        bridge.shutdown.request_stop()
        code = await asyncio.wait_for(task, 15)
    assert code == EXIT_OK


def inbound(chat: Chat, message_id: int) -> QuerySet[Message]:
    return Message.objects.filter(
        transport="telegram",
        direction=Direction.INBOUND,
        chat__external_id=str(chat.chat_id),
        transport_message_id=str(message_id),
    )


async def status(chat: Chat, message_id: int) -> tuple[str, str] | None:
    row = await inbound(chat, message_id).values_list("status", "status_reason").afirst()
    return None if row is None else (row[0], row[1])


async def answered(world: World, chat: Chat, message: raw.types.Message) -> list[str]:
    """Push ``message`` and wait until it is answered; the bot's answers to it."""
    await world.harness.push(message)
    await until(lambda: is_done(chat, message.id))
    return world.answers_to(chat, message.id)


async def is_done(chat: Chat, message_id: int) -> bool:
    """Finished: not waiting, not in progress, and not interrupted (that one resumes)."""
    found = await status(chat, message_id)
    return found is not None and found[0] not in ("received", "processing", "interrupted")


async def outbox_enqueue_async(chat_pk: int, text: str, *, key: str = "test:notice") -> None:
    await sync_to_async(outbox_enqueue)(
        transport="telegram", chat_pk=chat_pk, text=text, idempotency_key=key
    )


BOT = make_user(7000, "Assistant", username="aisystem_bot", bot=True, is_self=True)


async def bot_world(fake: FakeClaude, me: raw.types.User = BOT) -> World:
    """A ``World`` for bot ``me`` whose chats anyone may use (an allow-everyone rule)."""
    await AccessRule.objects.acreate(action=AccessAction.ALLOW, match_everyone=True)
    session = await TelegramSession.objects.acreate(
        name="default", mode=TelegramSession.Mode.BOT, session_string=session_string(me)
    )
    return World(TelegramHarness(me), session, fake)
