"""Edited messages: editing a question gets an answer to the edited text, once per edit.

Each edit is a message of its own for the pipeline (its dedup key holds the edit's time), so
Telegram delivering the same edit twice, or the original again, still gets one answer. An
edit that leaves the text as it was (a link preview appearing), and an edit of one of our
own messages, get none.
"""

from __future__ import annotations

import pytest
from pyrogram import raw

from aisystem.models import Direction, Event, Message
from telegram_bridge.faketelegram.builders import make_user, now, private_chat, wire
from tests.telegram_bridge.harness.world import (
    World,
    answered,
    is_done,
    running,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)


def edit_of(message: raw.types.Message, text: str, *, seconds_later: int) -> raw.types.Message:
    edited = wire(message)
    edited.message, edited.edit_date = text, now() + seconds_later
    return edited


async def key_done(key: str) -> bool:
    """The inbound message stored under dedup ``key`` is finished (its reply is final)."""
    found = Message.objects.filter(direction=Direction.INBOUND, transport_message_id=key)
    return await found.exclude(status__in=["received", "processing"]).aexists()


async def test_an_edited_question_is_answered_again_once_per_distinct_edit(world: World) -> None:
    h = world.harness
    question = h.message(PRIVATE, ALICE, "What is 2+2?")
    fixed = edit_of(question, "What is 3+3?", seconds_later=1)
    async with running(world.bridge()):
        await answered(world, PRIVATE, question)
        await h.push(fixed, edited=True)
        edit_key = f"{question.id}:edit:{fixed.edit_date}"
        await until(lambda: key_done(edit_key))  # answered: its reply no longer streams
        answers = world.answers_to(PRIVATE, question.id)
        await h.push(fixed, edited=True)  # Telegram delivers the same edit again
        await h.push(question)  # and the original
        preview = edit_of(fixed, "What is 3+3?", seconds_later=2)  # a link preview, say
        await h.push(preview, edited=True)
        ours = edit_of(world.outgoing(PRIVATE)[0], "You said: What is 2+2?!", seconds_later=3)
        await h.push(ours, edited=True)
        last = h.message(PRIVATE, ALICE, "thanks")
        await answered(world, PRIVATE, last)  # one chat, in order: the rest went before

    first, second = answers
    assert first == "You said: What is 2+2?"
    assert second.startswith("You said: (The user edited an earlier message")
    assert second.endswith("What is 3+3?")
    assert len(world.answers_to(PRIVATE, question.id)) == 2
    assert len(world.fake.requests) == 3  # the question, its edit, "thanks"
    edited = Message.objects.filter(direction=Direction.INBOUND, is_edited=True)
    rows = [row async for row in edited.values_list("transport_message_id", "status")]
    assert rows == [(edit_key, "answered")]  # not the preview, not our own message
    route = await Event.objects.aget(kind="route.planned", message__transport_message_id=edit_key)
    assert route.data["type"] == "edited"


async def test_an_edit_made_while_the_bridge_was_down_is_caught_up_once(world: World) -> None:
    h = world.harness
    question = h.message(PRIVATE, ALICE, "Capital of France?", date=now() - 900)
    async with running(world.bridge()):
        await answered(world, PRIVATE, question)
    fixed = edit_of(question, "Capital of Italy?", seconds_later=-600)

    async with running(world.bridge()):
        await h.push(fixed, edited=True)  # handed over at the start, with its old time…
        await h.push(fixed, edited=True)  # …and again
        await until(lambda: is_done(PRIVATE, f"{question.id}:edit:{fixed.edit_date}"))
        await answered(world, PRIVATE, h.message(PRIVATE, ALICE, "ok"))

    first, second = world.answers_to(PRIVATE, question.id)
    assert first == "You said: Capital of France?"
    assert second.endswith("Capital of Italy?")
