"""Status reactions tell the truth about the answer: 👀 taken, 🤔 showing, then 👍 delivered,
🕒 waiting for Telegram (a long flood wait: the outbox delivers it later), ❌ failed. An answer
that was only rescheduled never shows ❌, and its 👍 comes when the outbox delivers it."""

from __future__ import annotations

import pytest
from django.utils import timezone
from pyrogram import raw

from aisystem.models import OutboxItem
from telegram_bridge.faketelegram.builders import make_user, private_chat
from tests.telegram_bridge.harness.world import World, answered, running, status, until

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)
SendMessage = raw.functions.messages.SendMessage


async def outbox_sent() -> bool:
    """Make waiting outbox items due now; True once one was sent."""
    await OutboxItem.objects.filter(status="pending").aupdate(available_at=timezone.now())
    return await OutboxItem.objects.filter(status="sent").aexists()


async def test_an_answer_rescheduled_by_a_long_flood_wait_shows_a_clock_then_a_thumbs_up(
    world: World,
) -> None:
    # Telegram asks to wait two minutes, twice: the outbox's first try waits again too.
    world.server.fail(SendMessage, "FLOOD_WAIT_120", code=420, times=2)
    async with running(world.bridge()):
        question = world.harness.message(PRIVATE, ALICE, "Hi")
        assert await answered(world, PRIVATE, question) == []
        assert world.reactions(PRIVATE) == ["👀", "🕒"]  # waiting, not failed
        assert await status(PRIVATE, question.id) == ("answered", "rescheduled")

        # The waits are over: the bridge's outbox sender delivers it, and says so.
        await until(outbox_sent, timeout=5)
        await until(lambda: len(world.reactions(PRIVATE)) == 3, timeout=5)

    assert world.answers_to(PRIVATE, question.id) == ["You said: Hi"]
    assert world.reactions(PRIVATE) == ["👀", "🕒", "👍"]
    assert "❌" not in world.reactions(PRIVATE)
