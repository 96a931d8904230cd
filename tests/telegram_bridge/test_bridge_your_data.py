"""A person's data on Telegram, through the raw-update harness (the real bridge, kurigram's
parsing and upload code, fake Claude): ``/export`` arrives as a JSON document, ``/forget``
asks with [Confirm] [Cancel] and a press forgets."""

from __future__ import annotations

import json

import pytest
from pyrogram import raw

from aisystem.models import Event, Identity, Message, PendingAction, PendingActionStatus
from telegram_bridge.decisions import decision_callback_data
from telegram_bridge.faketelegram.builders import make_user, private_chat
from tests.telegram_bridge.harness.world import World, answered, running, until

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)
SendMedia = raw.functions.messages.SendMedia
SaveFilePart = raw.functions.upload.SaveFilePart
SetBotCallbackAnswer = raw.functions.messages.SetBotCallbackAnswer


def uploaded(world: World, file_id: int) -> bytes:
    parts = [p for p in world.server.sent(SaveFilePart) if p.file_id == file_id]
    return b"".join(p.bytes for p in sorted(parts, key=lambda p: p.file_part))


async def test_export_arrives_as_a_json_document_under_its_reply(world: World) -> None:
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "I like tea"))
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "/export"))
        await until(lambda: world.server.sent(SendMedia))

    (sent,) = world.server.sent(SendMedia)
    assert isinstance(sent.media, raw.types.InputMediaUploadedDocument)
    names = [a.file_name for a in sent.media.attributes if hasattr(a, "file_name")]
    assert len(names) == 1 and names[0].startswith("aisystem-data-") and names[0].endswith(".json")
    assert sent.media.mime_type == "application/json"
    data = json.loads(uploaded(world, sent.media.file.id))
    assert data["identity"]["external_id"] == str(ALICE.id)
    assert ("in", "I like tea") in [(m["direction"], m["text"]) for m in data["messages"]]
    assert answers[0].startswith("Here is everything I keep about you")


async def test_forget_asks_with_buttons_and_confirm_forgets(world: World) -> None:
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "my secret is 42"))
        asked = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "/forget"))
        action = await PendingAction.objects.aget()
        question = world.outgoing(PRIVATE)[-1]
        await until(lambda: _buttons(world, question.id))
        before = len(world.server.sent(SetBotCallbackAnswer))
        await world.harness.push_press(
            ALICE, PRIVATE, question.id, decision_callback_data(action.pk, "confirm").encode()
        )
        await until(lambda: len(world.server.sent(SetBotCallbackAnswer)) > before)
        await until(lambda: any("Done: I deleted" in t for t in world.screen(PRIVATE)))

    assert asked[-1].endswith("Delete your messages and what I know about you? Reply /confirm "
                              "or /cancel.")  # fmt: skip
    assert [text for text, _ in _buttons(world, question.id)] == []  # taken off once settled
    assert not await Message.objects.filter(text__contains="secret").aexists()
    assert (await PendingAction.objects.aget()).status == PendingActionStatus.DONE
    assert await Identity.objects.filter(external_id=str(ALICE.id)).aexists()
    forgotten = await Event.objects.aget(kind="identity.forgotten")
    assert forgotten.data["messages"] >= 2 and "secret" not in json.dumps(forgotten.data)


def _buttons(world: World, message_id: int) -> list[tuple[str, bytes]]:
    (message,) = [m for m in world.outgoing(PRIVATE) if m.id == message_id]
    if message.reply_markup is None:
        return []
    return [(b.text, b.type.data) for row in message.reply_markup.rows for b in row.buttons]
