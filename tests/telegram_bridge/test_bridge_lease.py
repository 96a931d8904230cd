"""Exactly one bridge per Telegram account (``telegram_bridge.lease``): a second one refuses to
start, a silent one is taken over, and the one taken over stops."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management.base import CommandError
from django.utils import timezone

from aisystem.models import TelegramSession
from telegram_bridge.bridge import EXIT_BUSY
from telegram_bridge.faketelegram.builders import make_user, private_chat
from telegram_bridge.lease import lease_claim, lease_release
from tests.telegram_bridge.harness.world import World, answered, running, until
from tests.telegram_bridge.test_bridge import runbridge_command

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = make_user(1001, "Alice", username="alice")
PRIVATE = private_chat(ALICE)
ELSEWHERE = "other-host:4242:abcdef"


async def runner_of(world: World) -> str:
    session = await TelegramSession.objects.aget(pk=world.session.pk)
    return session.runner


async def test_a_second_bridge_for_the_account_refuses_to_start_and_the_first_goes_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    h = world.harness
    async with running(world.bridge()) as first:
        assert await runner_of(world) == first.lease.runner
        with caplog.at_level(logging.ERROR, logger="telegram_bridge.lease"):
            assert await asyncio.wait_for(world.bridge().run(), 10) == EXIT_BUSY
        h.client = first.client  # updates go to the connected client again
        answers = await answered(world, PRIVATE, h.message(PRIVATE, ALICE, "still there?"))
        assert await runner_of(world) == first.lease.runner

    assert answers == ["You said: still there?"]  # once: the second bridge never connected
    assert "is run by another bridge" in caplog.text and first.lease.runner in caplog.text
    assert await runner_of(world) == ""  # released at the stop
    async with running(world.bridge()):  # so the next one starts at once
        await answered(world, PRIVATE, h.message(PRIVATE, ALICE, "and now?"))


async def test_a_bridge_that_went_silent_is_taken_over_and_stops_when_it_notices(
    world: World,
) -> None:
    silent = world.bridge()  # heartbeat every second: stale after three
    task = asyncio.create_task(silent.run())
    await until(lambda: silent.intake_open)

    fresh = await sync_to_async(lease_claim)(
        world.session.pk, ELSEWHERE, now=timezone.now(), stale_after=timedelta(seconds=3)
    )
    later = timezone.now() + timedelta(seconds=4)  # as another machine sees it, 4 s on
    taken = await sync_to_async(lease_claim)(
        world.session.pk, ELSEWHERE, now=later, stale_after=timedelta(seconds=3)
    )

    assert fresh is not None and fresh.runner == silent.lease.runner  # it was beating: refused
    assert taken is None
    assert await asyncio.wait_for(task, 15) == EXIT_BUSY  # its next beat found the row taken
    assert await runner_of(world) == ELSEWHERE  # and it did not release someone else's lease
    session = await TelegramSession.objects.aget(pk=world.session.pk)
    assert session.state != "stopped"  # the new holder's state is not overwritten


def test_runbridge_exits_4_and_says_why_when_another_bridge_runs_the_account() -> None:
    session = TelegramSession.objects.create(name="default", mode="bot", session_string="x")
    assert (
        lease_claim(session.pk, ELSEWHERE, now=timezone.now(), stale_after=timedelta(seconds=30))
        is None
    )

    with pytest.raises(CommandError, match="exactly one may run per account") as raised:
        runbridge_command()

    assert raised.value.returncode == 4
    assert lease_release(session.pk, "someone else") is False
    assert TelegramSession.objects.get().runner == ELSEWHERE
