"""A stop with messages still waiting: nothing Telegram handed over is lost.

Telegram does not send a message again once the client has taken it, so what was queued
behind a slow answer when the stop came, and what arrived after intake closed, must come
back at the next start, and be answered exactly once there.
"""

from __future__ import annotations

import pytest
from pyrogram import raw

from aisystem.models import Direction, Message
from pipeline.fakeclaude import Scenario
from telegram_bridge.faketelegram.builders import make_user, private_chat
from tests.telegram_bridge.harness.world import (
    World,
    inbound,
    running,
    status,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)
SendMessage = raw.functions.messages.SendMessage


async def test_messages_queued_or_arriving_at_a_stop_are_answered_once_after_a_restart(
    world: World,
) -> None:
    async def answered_all(messages: list[raw.types.Message]) -> bool:
        return all([await status(PRIVATE, m.id) == ("answered", "") for m in messages])

    h = world.harness
    world.fake.set_scenario(Scenario(name="slow", time_to_first_token=3.0), times=1)
    slow, *queued = [h.message(PRIVATE, ALICE, f"question {n}") for n in range(3)]
    late = h.message(PRIVATE, ALICE, "one more thing")
    first = world.bridge(shutdown_deadline_seconds=1)
    async with running(first):
        for message in (slow, *queued):
            await h.push(message)
        await until(lambda: world.fake.requests)  # Claude is thinking about the first…
        first.shutdown.request_stop()  # …when SIGTERM comes
        await h.push(late)  # and one more arrives while the bridge drains
        await until(lambda: inbound(PRIVATE, late.id).aexists())
    everything = [slow, *queued, late]
    for message in everything:
        assert await status(PRIVATE, message.id) == ("interrupted", "shutdown")
    assert world.screen(PRIVATE) == []

    second = world.bridge()
    async with running(second):
        await until(lambda: answered_all(everything))
        assert await second.resume_interrupted() == 0

    for message in everything:
        # Fake Claude echoes the last user turn: each question is its own, its history
        # holding the earlier questions with their answers (stored after it).
        assert world.answers_to(PRIVATE, message.id) == [f"You said: {message.message}"]
        assert await status(PRIVATE, message.id) == ("answered", "")
    replied_to = [r.reply_to.reply_to_msg_id for r in world.server.sent(SendMessage, ALICE.id)]
    assert replied_to == [message.id for message in everything]  # once each, in order
    assert await Message.objects.filter(direction=Direction.OUTBOUND).acount() == 4
