"""What answering a message costs in requests to Telegram (bench/bridge.py counts them at
scale). A short answer, whole before the first edit interval: 👀, typing, one SendMessage
(no Stop button, no edit) and 👍, every one of them through the outbound limiter; no
GetMessages for the message our reply answers, and no reactions in a chat that has them
turned off. A longer one streams, and its Stop button goes in the final edit, before the 👍.

The client's message cache is one message here, as if a thousand busy chats had pushed
everything else out of Pyrogram's default cache of 1000.
"""

from __future__ import annotations

from typing import Any

import pytest
from pyrogram import raw

from aisystem.models import Chat
from pipeline.fakeclaude import Scenario
from telegram_bridge.bridge import TelegramBridge
from telegram_bridge.faketelegram.builders import entity, group_chat, make_user, private_chat
from telegram_bridge.faketelegram.server import addressee
from tests.telegram_bridge.harness.world import World, answered, running

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
BOB = make_user(1002, "Bob", username="bob")
PRIVATE = private_chat(ALICE)
TEAM = group_chat(2001, "Team")
TINY_CACHE = {"max_message_cache_size": 1}
R = raw.functions.messages
SendMessage, EditMessage, GetMessages, SendReaction, SetTyping = (
    R.SendMessage,
    R.EditMessage,
    R.GetMessages,
    R.SendReaction,
    R.SetTyping,
)


def to_chat(world: World, chat_id: int) -> list[Any]:
    return [request for request in world.server.requests if addressee(request) == chat_id]


def admitted(bridge: TelegramBridge) -> int:
    assert bridge.transport is not None
    return bridge.transport.limiter.admitted


async def test_a_short_answer_is_one_send_with_no_edit_and_no_stop_button(world: World) -> None:
    async with running(world.bridge(client_options=TINY_CACHE)) as bridge:
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Hi"))

    assert answers == ["You said: Hi"]
    (send,) = world.server.sent(SendMessage, ALICE.id)
    assert send.message == "You said: Hi" and send.reply_markup is None  # never a Stop button
    assert world.server.sent(EditMessage, ALICE.id) == []
    assert world.server.sent(GetMessages) == []
    assert world.reactions(PRIVATE) == ["👀", "👍"]
    requests = to_chat(world, ALICE.id)
    assert [type(r).__name__ for r in requests] == [
        "SendReaction",
        "SetTyping",
        "SendMessage",
        "SendReaction",
    ]
    assert admitted(bridge) == len(requests)  # every one of them under the one budget


async def test_a_streamed_answer_loses_its_stop_button_before_the_final_reaction(
    world: World,
) -> None:
    words = " ".join(f"w{n}" for n in range(40))
    world.fake.set_scenario(Scenario(name="streaming", reply_text=words, tokens_per_second=40))
    async with running(world.bridge()) as bridge:
        assert bridge.transport is not None
        bridge.transport.edit_interval_seconds = 0.2
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Count"))

    assert answers == [words]
    first = world.server.sent(SendMessage, ALICE.id)[0]
    assert first.reply_markup is not None  # the Stop button while it streams…
    requests = to_chat(world, ALICE.id)
    last_edit = max(i for i, r in enumerate(requests) if isinstance(r, EditMessage))
    final_reaction = max(i for i, r in enumerate(requests) if isinstance(r, SendReaction))
    assert last_edit < final_reaction  # …gone before the 👍
    assert requests[last_edit].reply_markup is None
    assert world.outgoing(PRIVATE)[0].reply_markup is None
    assert world.reactions(PRIVATE) == ["👀", "🤔", "👍"]  # 🤔 once it started to show
    assert admitted(bridge) == len(requests)


async def test_a_reply_to_our_answer_is_fetched_once_it_left_the_cache(world: World) -> None:
    h = world.harness
    text = "@aisystem_bot what is 2+2?"
    mention = entity(text, "@aisystem_bot", raw.types.MessageEntityMention)
    async with running(world.bridge(client_options=TINY_CACHE)):
        question = h.message(TEAM, BOB, text, entities=[mention])
        await answered(world, TEAM, question)
        ours = world.outgoing(TEAM)[0]
        await answered(world, PRIVATE, h.message(PRIVATE, ALICE, "meanwhile"))  # cache: gone
        assert world.server.sent(GetMessages) == []
        follow_up = h.message(TEAM, BOB, "and times 3?", reply_to=ours.id)  # no mention
        answers = await answered(world, TEAM, follow_up)

    # Addressed to us (it replies to our answer), which Claude is shown.
    assert answers == [
        'You said: In reply to your earlier message: "You said: what is 2+2?"\n\nand times 3?'
    ]
    (fetch,) = world.server.sent(GetMessages)
    assert [wanted.id for wanted in fetch.id] == [follow_up.id]  # "what does it reply to"


async def test_no_reactions_are_sent_in_a_chat_that_turned_them_off(world: World) -> None:
    await Chat.objects.acreate(
        transport="telegram",
        external_id=str(ALICE.id),
        chat_type="private",
        status_reactions=False,
    )
    async with running(world.bridge()):
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Hi"))

    assert answers == ["You said: Hi"]
    assert world.server.sent(SendReaction) == []
