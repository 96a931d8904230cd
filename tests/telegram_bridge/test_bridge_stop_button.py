"""Who may press ⏹ Stop: in a group everyone sees the button under the reply being
streamed, but only the person whose message it answers can stop it."""

from __future__ import annotations

import pytest
from pyrogram import raw

from pipeline.fakeclaude import Scenario
from telegram_bridge.bridge import NOT_YOURS_TO_STOP
from telegram_bridge.faketelegram.builders import entity, group_chat, make_user
from tests.telegram_bridge.harness.world import World, is_done, running, status, until

pytestmark = pytest.mark.django_db(transaction=True)

BOB = make_user(1002, "Bob", username="bob")
CAROL = make_user(1003, "Carol")
TEAM = group_chat(2001, "Team")
SLOW_STREAM = Scenario(
    name="slow-stream", reply_text=" ".join(f"w{n}" for n in range(200)), tokens_per_second=40
)
SendMessage = raw.functions.messages.SendMessage
SetBotCallbackAnswer = raw.functions.messages.SetBotCallbackAnswer


async def test_only_the_person_who_asked_can_stop_the_reply(world: World) -> None:
    world.fake.set_scenario(SLOW_STREAM)
    h = world.harness
    text = "@aisystem_bot write a lot"
    mention = entity(text, "@aisystem_bot", raw.types.MessageEntityMention)
    question = h.message(TEAM, BOB, text, entities=[mention])
    async with running(world.bridge()):
        await h.push(question)
        await until(lambda: world.server.sent(SendMessage, TEAM.chat_id))
        (button,) = world.server.sent(SendMessage, TEAM.chat_id)[0].reply_markup.rows[0].buttons
        shown_id = world.outgoing(TEAM)[0].id

        await h.push_press(CAROL, TEAM, shown_id, button.type.data)
        await until(lambda: world.server.sent(SetBotCallbackAnswer))
        assert not await is_done(TEAM, question.id)  # still streaming

        await h.push_press(BOB, TEAM, shown_id, button.type.data)
        await until(lambda: is_done(TEAM, question.id))

    refused, accepted = world.server.sent(SetBotCallbackAnswer)
    assert refused.message == NOT_YOURS_TO_STOP == "Only the person who asked can stop this reply."
    assert accepted.message == "Stopping…"
    assert await status(TEAM, question.id) == ("answered", "cancelled")
    assert world.screen(TEAM)[0].endswith("(stopped)")
