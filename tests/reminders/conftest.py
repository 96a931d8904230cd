"""Fixtures for the reminder tests: a person in a chat, and Claude pointed at the fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import override_settings

from aisystem.models import AccessAction, AccessRule, Chat, ChatType, Identity, Transport
from pipeline.fakeclaude import FakeClaude
from tests.conftest import PRIMARY_KEY
from tests.factories import ChatFactory, IdentityFactory

# Every test runs at this moment unless it says otherwise: a Friday in Berlin's winter.
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def claude_is_the_fake(fake_claude: FakeClaude, settings: Any) -> Iterator[FakeClaude]:
    """The job's own Claude client talks to the fake, with quick retries."""
    settings.CLAUDE = {
        **settings.CLAUDE,
        "MAX_ATTEMPTS": 2,
        "BACKOFF_BASE_SECONDS": 0.001,
        "BACKOFF_MAX_SECONDS": 0.01,
    }
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield fake_claude


def person(transport: str = Transport.TELEGRAM) -> tuple[Identity, Chat]:
    """Someone allowed to talk to the assistant, and their private chat on ``transport``."""
    AccessRule.objects.get_or_create(action=AccessAction.ALLOW, match_everyone=True)
    chat_type = {Transport.WEB: ChatType.WEB, Transport.API: ChatType.API}.get(
        transport, ChatType.PRIVATE
    )
    return IdentityFactory(transport=transport), ChatFactory(
        transport=transport, chat_type=chat_type
    )
