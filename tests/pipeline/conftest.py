"""Fixtures for talking to the fake Messages API with the real anthropic SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic  # noqa: TID251 - tests drive the real SDK against the fake
import pytest

from pipeline.fakeclaude import FakeClaude
from tests.conftest import PRIMARY_KEY, SECONDARY_KEY

__all__ = ["PRIMARY_KEY", "SECONDARY_KEY"]


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
