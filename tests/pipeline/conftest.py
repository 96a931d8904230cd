"""Fixtures for talking to the fake Messages API with the real anthropic SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic  # noqa: TID251 - tests drive the real SDK against the fake
import pytest

from pipeline.fakeclaude import FakeClaude

PRIMARY_KEY = "sk-ant-test-primary"
SECONDARY_KEY = "sk-ant-test-secondary"


@pytest.fixture
def fake_claude() -> Iterator[FakeClaude]:
    """A running fake on an ephemeral loopback port that knows PRIMARY_KEY and SECONDARY_KEY.

    ``.base_url`` for the SDK, ``.set_scenario(...)``/``.define_scenario(...)`` to steer it,
    ``.requests``/``.last_request`` to see what it received.
    """
    with FakeClaude(api_keys=[PRIMARY_KEY, SECONDARY_KEY]) as fake:
        yield fake


@pytest.fixture
def claude(fake_claude: FakeClaude) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(api_key=PRIMARY_KEY, base_url=fake_claude.base_url, max_retries=0)
    with client:
        yield client


@pytest.fixture
async def async_claude(fake_claude: FakeClaude) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        api_key=PRIMARY_KEY, base_url=fake_claude.base_url, max_retries=0
    )
    async with client:
        yield client
