"""Broadcast channels: an answer there is public to every subscriber, so posts in a channel are
ignored (recorded, not answered) unless staff enable that channel (``Chat.channel_enabled``,
a checkbox in the admin). Supergroups are groups, not channels: they are answered as before."""

from __future__ import annotations

import pytest
from pyrogram import raw

from aisystem.models import Chat
from telegram_bridge.faketelegram.builders import entity, make_user, supergroup_chat
from tests.telegram_bridge.harness.world import World, answered, running, status

pytestmark = pytest.mark.django_db(transaction=True)

NEWS = supergroup_chat(3001, "News", broadcast=True)
FORUM = supergroup_chat(3002, "Forum")
BOB = make_user(1002, "Bob", username="bob")
TEXT = "@aisystem_bot summarise this"
MENTION = entity(TEXT, "@aisystem_bot", raw.types.MessageEntityMention)
SendMessage = raw.functions.messages.SendMessage


async def test_a_channel_post_mentioning_the_bot_is_ignored_until_staff_enable_the_channel(
    world: World,
) -> None:
    h = world.harness
    async with running(world.bridge()):
        post = h.message(NEWS, None, TEXT, entities=[MENTION])
        assert await answered(world, NEWS, post) == []
        assert await status(NEWS, post.id) == ("ignored", "channel_not_enabled")
        assert world.server.sent(SendMessage) == []

        # Staff tick "answer in this channel" on the chat the ignored post created.
        chat = await Chat.objects.aget(transport="telegram", external_id=str(NEWS.chat_id))
        assert (chat.chat_type, chat.channel_enabled) == ("channel", False)
        chat.channel_enabled = True
        await chat.asave(update_fields=["channel_enabled"])

        later = h.message(NEWS, None, TEXT, entities=[MENTION])
        answers = await answered(world, NEWS, later)

    assert answers == ["You said: summarise this"]
    assert await status(NEWS, later.id) == ("answered", "")


async def test_a_supergroup_is_still_answered_when_mentioned(world: World) -> None:
    async with running(world.bridge()):
        question = world.harness.message(FORUM, BOB, TEXT, entities=[MENTION])
        answers = await answered(world, FORUM, question)

    assert answers == ["You said: summarise this"]
