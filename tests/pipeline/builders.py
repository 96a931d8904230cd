"""Plain values for the pipeline's step tests: one message, its context and its workspace.

A test names only the fields that matter to it: ``message(text="/help")``,
``context(chat_type="supergroup")``. Everything else is the ordinary case below.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pipeline.types import InboundMessage, MessageContext, WorkspaceInfo

WORKSPACE = WorkspaceInfo(
    id=1,
    slug="default",
    name="Default",
    system_prompt="You are a helpful assistant.",
    model="claude-ws",
    max_tokens=800,
)

_MESSAGE = InboundMessage(
    transport="telegram",
    chat_id="100",
    chat_type="private",
    message_id="1",
    sender_id="7",
    sent_at=datetime(2025, 1, 1, tzinfo=UTC),
    text="hello",
    sender_name="Ann",
    assistant_username="HelperBot",
)

_CONTEXT = MessageContext(
    message_pk=1,
    identity_id=1,
    chat_pk=1,
    conversation_id=1,
    workspace=WORKSPACE,
    text="hello",
    sender_name="Ann",
)


def message(**fields: Any) -> InboundMessage:
    """A private Telegram message "hello" from Ann (sender "7", chat "100", message "1"),
    sent 2025-01-01 UTC to an assistant called HelperBot, with ``fields`` replacing any of
    ``InboundMessage``'s fields. An unknown field name raises TypeError."""
    return replace(_MESSAGE, **fields)


def context(**fields: Any) -> MessageContext:
    """The context of ``message()``: a private chat with Ann in ``WORKSPACE``, no history,
    text "hello" (all ids 1), with ``fields`` replacing any of ``MessageContext``'s fields.
    An unknown field name raises TypeError."""
    return replace(_CONTEXT, **fields)
