"""The pipeline end to end for a person's data: real database, the real anthropic SDK against
the fake Messages API, and a transport that records what the person would see, files too."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from aisystem.models import AccessAction, AccessRule, ChatType
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from pipeline.types import InboundMessage, OutboundMedia
from tests.conftest import PRIMARY_KEY
from tests.fakes.transport import RecordingTransport

_ids = itertools.count(1)


async def _no_sleep(seconds: float) -> None:
    return None


class FileRecordingTransport(RecordingTransport):
    """A ``RecordingTransport`` that keeps the files it is asked to send, as a person's
    Telegram would show them (``fail_files`` makes the transport refuse them)."""

    def __init__(self, *, fail_files: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.files: list[OutboundMedia] = []
        self.fail_files = fail_files

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        if self.fail_files:
            raise ConnectionError("the upload was cut off")
        self.files.append(media)
        return str(next(self._ids))


@pytest.fixture
def processor(fake_claude: FakeClaude) -> UnifiedMessageProcessor:
    client = ClaudeClient(
        base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep
    )
    return UnifiedMessageProcessor(client=client)


@pytest.fixture
def allow_everyone(db: None) -> Iterator[AccessRule]:
    yield AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)


def message(text: str = "hello there", **overrides: Any) -> InboundMessage:
    """A private Telegram message from Ada (user 7, chat 42) unless ``overrides`` say else."""
    fields: dict[str, Any] = {
        "transport": "telegram",
        "chat_id": "42",
        "chat_type": ChatType.PRIVATE,
        "message_id": str(next(_ids)),
        "sender_id": "7",
        "sender_username": "ada",
        "sender_name": "Ada Lovelace",
        "sent_at": timezone.now(),
        "text": text,
        "assistant_username": "helperbot",
    }
    fields.update(overrides)
    return InboundMessage(**fields)
