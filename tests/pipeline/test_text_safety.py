"""Strings no database can store (a lone surrogate, NUL) are replaced at the pipeline's entry,
whatever the transport, so every message is recorded and answered."""

from __future__ import annotations

import pytest
from django.utils import timezone

from aisystem.models import AccessAction, AccessRule, Chat, Identity, Message
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from pipeline.text_safety import inbound_safe, safe_text
from pipeline.types import Attachment, InboundMessage, Poll, ReplyReference
from tests.fakes.transport import RecordingTransport
from tests.pipeline.conftest import PRIMARY_KEY

HALF = "\udc00"  # a low surrogate with no high one before it


def test_lone_halves_and_nul_become_the_replacement_character() -> None:
    assert safe_text(f"a{HALF}b\x00c") == "a\ufffdb\ufffdc"
    assert safe_text("\ud83d\ude00") == "😀"  # two halves that belong together
    plain = "nothing to do 👍"
    assert safe_text(plain) is plain


def test_every_string_of_a_message_is_made_safe_and_bytes_are_left_alone() -> None:
    message = InboundMessage(
        transport="web",
        chat_id="c",
        chat_type="web",
        message_id="1",
        sender_id="s",
        sent_at=timezone.now(),
        text=f"hi{HALF}",
        sender_name=f"Ada{HALF}",
        chat_title=f"Room{HALF}",
        reply_to=ReplyReference(transport_message_id="0", text=f"before{HALF}"),
        attachments=(Attachment(kind="document", file_name=f"f{HALF}.txt", data=b"\x00\xff"),),
        poll=Poll(question=f"q{HALF}", options=(f"o{HALF}", "fine")),
    )

    safe = inbound_safe(message)

    assert (safe.text, safe.sender_name, safe.chat_title) == ("hi\ufffd", "Ada\ufffd", "Room\ufffd")
    assert safe.reply_to is not None and safe.reply_to.text == "before\ufffd"
    assert safe.attachments[0].file_name == "f\ufffd.txt"
    assert safe.attachments[0].data == b"\x00\xff"
    assert safe.poll == Poll(question="q\ufffd", options=("o\ufffd", "fine"))
    assert inbound_safe(safe) is safe


@pytest.mark.django_db(transaction=True)
async def test_a_browser_message_with_a_lone_surrogate_is_recorded_and_answered(
    fake_claude: FakeClaude,
) -> None:
    await AccessRule.objects.acreate(action=AccessAction.ALLOW, match_everyone=True)
    client = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    processor = UnifiedMessageProcessor(client=client)
    message = InboundMessage(
        transport="web",
        chat_id="web-1",
        chat_type="web",
        message_id="m1",
        sender_id="u1",
        sent_at=timezone.now(),
        text=f"odd {HALF} text",
        sender_name=f"Ada{HALF}",
        chat_title=f"Ada's chat{HALF}",
    )
    transport = RecordingTransport()
    try:
        result = await processor.process_message(message, transport)
    finally:
        await client.aclose()

    assert result.status == "answered"
    assert transport.texts == ["You said: odd \ufffd text"]
    stored = await Message.objects.aget(pk=result.message_id)
    assert stored.text == "odd \ufffd text"
    assert (await Identity.objects.aget(external_id="u1")).display_name == "Ada\ufffd"
    assert (await Chat.objects.aget(external_id="web-1")).title == "Ada's chat\ufffd"
