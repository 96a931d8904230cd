"""Text no database can store: half of a surrogate pair (or NUL) in a message. The TL codec
cannot serialize a lone surrogate, so the text is put into the update after its round trip
and fed to ``Client.handle_updates`` (the parser, the dispatcher, the bridge, the pipeline and
the database are real). Telegram's text could carry one after a UTF-16 slice cut an emoji in
half; the REST API and the browser chat read JSON, where ``"\\ud83d"`` is valid."""

from __future__ import annotations

import pytest
from pyrogram import raw

from telegram_bridge.faketelegram.builders import make_user, private_chat, wire
from tests.telegram_bridge.harness.world import World, inbound, is_done, running, status, until

pytestmark = pytest.mark.django_db(transaction=True)

HALF = "\ud83d"  # the first half of 😀 (U+1F600), alone
ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)


async def push_unserialized(world: World, message: raw.types.Message, text: str) -> None:
    """``message`` as a new-message update off the wire, then with ``text`` put in (which the
    TL round trip ``push`` makes could not carry)."""
    server = world.server
    update = wire(server.updates(server.new_message_update(message)))
    update.updates[0].message.message = text
    await world.harness.client.handle_updates(update)  # type: ignore[no-untyped-call]


async def test_a_lone_surrogate_is_replaced_and_the_message_answered_and_recorded(
    world: World,
) -> None:
    question = world.harness.message(PRIVATE, ALICE, "placeholder")
    async with running(world.bridge()):
        await push_unserialized(world, question, f"broken {HALF} emoji and a NUL \x00 here")
        await until(lambda: is_done(PRIVATE, question.id))

    assert world.answers_to(PRIVATE, question.id) == [
        "You said: broken \ufffd emoji and a NUL \ufffd here"
    ]
    assert await status(PRIVATE, question.id) == ("answered", "")
    row = await inbound(PRIVATE, question.id).aget()
    assert row.text == "broken \ufffd emoji and a NUL \ufffd here"


async def test_a_surrogate_pair_split_in_two_halves_is_put_back_together(world: World) -> None:
    question = world.harness.message(PRIVATE, ALICE, "placeholder")
    async with running(world.bridge()):
        await push_unserialized(world, question, "smile \ud83d\ude00")
        await until(lambda: is_done(PRIVATE, question.id))

    assert world.answers_to(PRIVATE, question.id) == ["You said: smile 😀"]
