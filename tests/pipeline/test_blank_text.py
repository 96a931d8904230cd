"""Text that shows nothing (zero-width characters, a BOM, bidi controls) is blank, on every
transport: it is routed as "nothing was sent", never to Claude."""

from __future__ import annotations

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from aisystem.models import AccessAction, AccessRule, ChatType
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from pipeline.security_gate import is_blank
from pipeline.type_router import classify, unsupported_reply
from pipeline.types import InboundMessage
from tests.conftest import PRIMARY_KEY
from tests.fakes.transport import RecordingTransport
from tests.pipeline.builders import message

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u202a\u202e\u2066\u2069\u00ad\u3164\ufe0f \t\n\u3000"


@pytest.mark.parametrize(
    "text", ["", "   ", "\u200b", "\ufeff", "\ufeff\ufeff\n", "\u202e\u202c", "\u2060 \u200d"]
)
def test_invisible_text_is_blank(text: str) -> None:
    assert is_blank(text)
    assert classify(message(text=text)) == ("unknown", "unknown")


@given(st.text(st.sampled_from(INVISIBLE)))
def test_any_mix_of_invisible_characters_is_blank(text: str) -> None:
    assert is_blank(text)


@given(
    st.text(st.sampled_from(INVISIBLE)),
    st.characters(categories=["L", "N", "P", "S"]),
    st.text(st.sampled_from(INVISIBLE)),
)
def test_one_visible_character_is_not_blank(before: str, visible: str, after: str) -> None:
    assert not is_blank(before + visible + after)


@pytest.mark.django_db(transaction=True)
async def test_a_zero_width_message_is_not_sent_to_claude(fake_claude: FakeClaude) -> None:
    await AccessRule.objects.acreate(action=AccessAction.ALLOW, match_everyone=True)
    client = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    processor = UnifiedMessageProcessor(client=client)
    transport = RecordingTransport()
    inbound = InboundMessage(
        transport="telegram",
        chat_id="42",
        chat_type=ChatType.PRIVATE,
        message_id="1",
        sender_id="7",
        sent_at=timezone.now(),
        text="\ufeff\u200b",
    )

    result = await processor.process_message(inbound, transport)

    assert fake_claude.requests == []
    assert result.reply == unsupported_reply("unknown")
    assert transport.texts == [result.reply]
