"""What answering a message costs in requests to Telegram (bench/bridge.py counts them at
scale): one SendMessage, the final edit that also drops the Stop button, no GetMessages for
the message our reply answers, and no reactions in a chat that has them turned off.

The client's message cache is one message here, as if a thousand busy chats had pushed
everything else out of Pyrogram's default cache of 1000.
"""

from __future__ import annotations

import pytest
from pyrogram import raw

from aisystem.models import Chat
from telegram_bridge.faketelegram.builders import entity, group_chat, make_user, private_chat
from tests.telegram_bridge.harness.world import World, answered, running

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
BOB = make_user(1002, "Bob", username="bob")
PRIVATE = private_chat(ALICE)
TEAM = group_chat(2001, "Team")
TINY_CACHE = {"max_message_cache_size": 1}
R = raw.functions.messages
SendMessage, EditMessage, GetMessages, SendReaction = (
    R.SendMessage,
    R.EditMessage,
    R.GetMessages,
    R.SendReaction,
)


async def test_an_answer_is_one_send_and_one_edit_that_drops_the_stop_button(
    world: World,
) -> None:
    async with running(world.bridge(client_options=TINY_CACHE)):
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Hi"))

    assert answers == ["You said: Hi"]
    (send,) = world.server.sent(SendMessage, ALICE.id)
    assert send.reply_markup is not None  # the Stop button while it streams…
    (edit,) = world.server.sent(EditMessage, ALICE.id)
    assert edit.message == "You said: Hi" and edit.reply_markup is None  # …gone with the text
    assert world.outgoing(PRIVATE)[0].reply_markup is None
    assert world.server.sent(GetMessages) == []
    assert world.reactions(PRIVATE) == ["👀", "🤔", "👍"]


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
