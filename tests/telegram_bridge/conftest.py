"""Fixtures for the bridge's end-to-end tests (see ``harness.world``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pipeline.fakeclaude import FakeClaude
from tests.telegram_bridge.harness.world import World, bot_world


@pytest.fixture
async def world(fake_claude: FakeClaude) -> AsyncIterator[World]:
    """The bot ``harness.world.BOT`` on a fake server, anyone allowed, fake Claude."""
    world = await bot_world(fake_claude)
    yield world
    await world.aclose()
