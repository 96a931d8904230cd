"""Exactly one answer on screen: a reply's messages are recorded as they go out
(``telegram_bridge.journal``), so a stop, a crash or a long flood wait is followed by the same
messages being finished, never by a second copy.

A crash is a stop whose clean-up never ran: the first bridge is stopped with no time to finish
(its job is cancelled where it stood) and its message is put back to "processing", as a killed
process leaves it; the next bridge finds it at start and resumes it. ``FakeTelegram.hang``
holds a request in flight (its answer never comes), to stop the bridge at an exact point.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from pyrogram import raw

from aisystem.models import Direction, Message, OutboxItem
from pipeline.fakeclaude import Scenario
from telegram_bridge.faketelegram.builders import make_user, private_chat
from tests.telegram_bridge.harness.world import (
    World,
    inbound,
    is_done,
    running,
    status,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)
R = raw.functions.messages
SendMessage, EditMessage, GetMessages, SendReaction = (
    R.SendMessage,
    R.EditMessage,
    R.GetMessages,
    R.SendReaction,
)
WORDS = " ".join(f"w{n}" for n in range(200))
SLOW_STREAM = Scenario(name="slow-stream", reply_text=WORDS, tokens_per_second=40)


async def crashed(chat_id: int, message_id: int) -> None:
    """What a killed process leaves: the message still "processing"."""
    await inbound(PRIVATE, message_id).aupdate(status="processing", status_reason="")


async def replies_recorded() -> int:
    return await Message.objects.filter(direction=Direction.OUTBOUND).acount()


# --- 1. A stop or a crash mid-stream ------------------------------------------------------------


@pytest.mark.parametrize("how", ["stop", "crash"])
async def test_an_answer_cut_mid_stream_is_finished_in_its_own_message(
    world: World, how: str
) -> None:
    world.fake.set_scenario(SLOW_STREAM, times=1)
    question = world.harness.message(PRIVATE, ALICE, "Write a lot")
    async with running(world.bridge(shutdown_deadline_seconds=0)):
        await world.harness.push(question)
        await until(lambda: world.server.sent(SendMessage, ALICE.id))  # a fragment shows
    assert await status(PRIVATE, question.id) == ("interrupted", "shutdown")
    (fragment,) = world.screen(PRIVATE)
    assert fragment.startswith("w0") and "w199" not in fragment
    if how == "crash":
        await crashed(PRIVATE.chat_id, question.id)

    async with running(world.bridge()):  # resumed at start
        await until(lambda: is_done(PRIVATE, question.id))

    assert world.screen(PRIVATE) == ["You said: Write a lot"]  # the fragment, finished
    assert len(world.server.sent(SendMessage, ALICE.id)) == 1
    assert world.outgoing(PRIVATE)[0].reply_markup is None
    assert await status(PRIVATE, question.id) == ("answered", "")
    assert await replies_recorded() == 1


# --- 2. A long flood wait on the final edit ------------------------------------------------------


async def test_a_long_flood_wait_on_the_final_edit_is_finished_by_editing_the_fragment(
    world: World,
) -> None:
    # 1.5 s of streaming at one edit a second: a fragment shows, the final text never streams.
    words = " ".join(f"w{n}" for n in range(60))
    world.fake.set_scenario(Scenario(name="streaming", reply_text=words, tokens_per_second=40))
    final_edit = lambda edit: edit.message == words and edit.reply_markup is None  # noqa: E731
    world.server.fail(EditMessage, "FLOOD_WAIT_120", code=420, when=final_edit)
    question = world.harness.message(PRIVATE, ALICE, "Count")
    async with running(world.bridge()):
        await world.harness.push(question)
        await until(lambda: is_done(PRIVATE, question.id))
        assert await status(PRIVATE, question.id) == ("answered", "rescheduled")
        (fragment,) = world.screen(PRIVATE)
        assert fragment != words and words.startswith(fragment)

        # The wait is over: the outbox finishes the streamed message.
        await OutboxItem.objects.aupdate(available_at=timezone.now())
        await until(lambda: OutboxItem.objects.filter(status="sent").aexists(), timeout=5)

    assert world.screen(PRIVATE) == [words]
    assert len(world.server.sent(SendMessage, ALICE.id)) == 1  # only what was never shown
    assert world.outgoing(PRIVATE)[0].reply_markup is None


# --- 3. A crash between delivery and recording --------------------------------------------------


async def test_a_crash_after_the_answer_was_delivered_does_not_send_it_again(
    world: World,
) -> None:
    done = lambda request: request.reaction and request.reaction[0].emoticon == "👍"  # noqa: E731
    world.server.hang(SendReaction, handled=False, when=done)  # delivered; then the process dies
    question = world.harness.message(PRIVATE, ALICE, "Hi")
    async with running(world.bridge(shutdown_deadline_seconds=0)):
        await world.harness.push(question)
        await until(lambda: world.server.sent(SendReaction, ALICE.id)[1:])
    await crashed(PRIVATE.chat_id, question.id)

    async with running(world.bridge()):
        await until(lambda: is_done(PRIVATE, question.id))

    assert world.screen(PRIVATE) == ["You said: Hi"]
    assert len(world.server.sent(SendMessage, ALICE.id)) == 1
    assert len(world.fake.requests) == 1  # Claude was not asked again
    assert world.reactions(PRIVATE)[-1] == "👍"
    assert await status(PRIVATE, question.id) == ("answered", "")
    assert await replies_recorded() == 1


async def test_a_send_whose_answer_was_lost_is_found_in_the_chat_and_not_sent_again(
    world: World,
) -> None:
    world.server.hang(SendMessage, handled=True)  # Telegram has it; its answer never comes
    question = world.harness.message(PRIVATE, ALICE, "Hi")
    async with running(world.bridge(shutdown_deadline_seconds=0)):
        await world.harness.push(question)
        await until(lambda: world.server.sent(SendMessage, ALICE.id))
    await crashed(PRIVATE.chat_id, question.id)

    async with running(world.bridge()):
        await until(lambda: is_done(PRIVATE, question.id))

    assert world.screen(PRIVATE) == ["You said: Hi"]
    assert len(world.server.sent(SendMessage, ALICE.id)) == 1
    assert world.server.sent(GetMessages)  # looked for our reply to the question first
    assert await status(PRIVATE, question.id) == ("answered", "")
    assert await replies_recorded() == 1


async def test_a_resend_after_a_lost_answer_uses_the_same_random_id_and_telegram_drops_it(
    world: World,
) -> None:
    world.server.hang(SendMessage, handled=True)
    look_up = lambda request: len(request.id) > 1  # noqa: E731 - not the resume's own fetch
    world.server.fail(GetMessages, "INTERNAL_SERVER_ERROR", code=500, when=look_up)
    question = world.harness.message(PRIVATE, ALICE, "Hi")
    async with running(world.bridge(shutdown_deadline_seconds=0)):
        await world.harness.push(question)
        await until(lambda: world.server.sent(SendMessage, ALICE.id))
    await crashed(PRIVATE.chat_id, question.id)

    async with running(world.bridge()):
        await until(lambda: is_done(PRIVATE, question.id))

    first, again = world.server.sent(SendMessage, ALICE.id)
    assert again.random_id == first.random_id  # so Telegram dropped the second one
    assert world.screen(PRIVATE) == ["You said: Hi"]
    assert await status(PRIVATE, question.id) == ("answered", "")
    assert await replies_recorded() == 1
