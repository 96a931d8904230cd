"""Reminders reach people on their transport: Telegram through the bridge's outbox (the
raw-update harness: a real bridge against the fake Telegram server) and REST callers through
their chat's history (``GET /api/v1/chats/{chat_id}/messages``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from aisystem.models import OutboxItem, Reminder
from aisystem.services.tokens import api_token_create
from pipeline.fakeclaude import FakeClaude, Scenario
from pipeline.reminders.delivery import reminders_deliver_due
from telegram_bridge.faketelegram.builders import make_user, private_chat
from tests.telegram_bridge.harness.world import World, answered, bot_world, running, until

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)


@pytest.fixture
async def world(claude_is_the_fake: FakeClaude) -> AsyncIterator[World]:
    world = await bot_world(claude_is_the_fake)
    yield world
    await world.aclose()


def sent_texts(world: World) -> list[str]:
    """What Alice reads from the bot."""
    return world.screen(PRIVATE)


async def deliver_at(moment: Any) -> int:
    return await sync_to_async(reminders_deliver_due)(now=moment)


async def test_a_telegram_reminder_arrives_through_the_bridge(world: World) -> None:
    async with running(world.bridge()):
        question = world.harness.message(PRIVATE, ALICE, "/remind in 10m stretch")
        [confirmation] = await answered(world, PRIVATE, question)
        assert confirmation.startswith("⏰ Okay, I'll remind you “stretch” on ")

        assert await deliver_at(timezone.now() + timedelta(minutes=10, seconds=5)) == 1
        await until(lambda: "⏰ Reminder: stretch" in sent_texts(world))
        await until(lambda: OutboxItem.objects.filter(status="sent").aexists())

    assert sent_texts(world).count("⏰ Reminder: stretch") == 1
    assert world.fake.requests == []  # a command and a one-off reminder need no model


async def test_a_telegram_scheduled_prompt_is_answered_through_the_bridge(world: World) -> None:
    world.fake.set_scenario(Scenario(name="briefing", reply_text="Good morning, Alice."))
    async with running(world.bridge()):
        question = world.harness.message(PRIVATE, ALICE, "/remind every day 08:00 brief me")
        [confirmation] = await answered(world, PRIVATE, question)
        assert confirmation.startswith("🔁 Scheduled: every day at 08:00 (UTC)")
        due = (await Reminder.objects.aget()).due_at

        assert await deliver_at(due + timedelta(seconds=20)) == 1
        await until(lambda: "Good morning, Alice." in sent_texts(world))

    assert world.claude_texts()[-1] == "brief me"


async def test_a_rest_callers_reminder_appears_in_the_chats_history(
    claude_is_the_fake: FakeClaude,
) -> None:
    claude_is_the_fake.set_scenario(Scenario(name="news", reply_text="Today's news."))
    _, plaintext = await sync_to_async(api_token_create)(name="integration")
    headers = {"Authorization": f"Bearer {plaintext}"}

    async def post(text: str) -> dict[str, Any]:
        body = json.dumps({"chat_id": "c1", "user_id": "u1", "text": text})
        response = await AsyncClient().post(
            "/api/v1/messages", data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    once = await post("/remind in 10m stretch")
    every = await post("/remind every day 07:00 the news")
    assert once["status"] == "answered" and "I'll remind you “stretch”" in once["reply"]
    assert every["reply"].startswith("🔁 Scheduled: every day at 07:00 (UTC)")
    seen = (await AsyncClient().get("/api/v1/chats/c1/messages", headers=headers)).json()
    last = seen["items"][-1]["id"]

    prompt = await Reminder.objects.aget(kind="prompt")
    await deliver_at(timezone.now() + timedelta(minutes=10))
    await deliver_at(prompt.due_at + timedelta(seconds=5))

    later = await AsyncClient().get(f"/api/v1/chats/c1/messages?after={last}", headers=headers)
    items = [(i["direction"], i["text"], i["status"]) for i in later.json()["items"]]
    reminder = ("out", "⏰ Reminder: stretch", "delivered")
    # (Which comes first depends on the clock: near 07:00 both are due in the first run.)
    assert [item for item in items if item != reminder] == [
        ("in", "the news", "answered"),
        ("out", "Today's news.", "delivered"),
    ]
    assert items.count(reminder) == 1
