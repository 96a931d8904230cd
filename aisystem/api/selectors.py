"""Reads for the REST API, scoped to one token, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aisystem.models import Direction, Message, Transport


@dataclass(frozen=True)
class StoredMessage:
    """An inbound API message and the text of its latest reply (None while there is none)."""

    message_id: int
    status: str  # the stored MessageStatus
    reason: str
    text: str
    reply: str | None
    created_at: datetime


def api_message_for_token(*, token_id: int, message_id: int) -> StoredMessage | None:
    """The message ``message_id`` if it was sent with this token, else None (also when it
    exists but belongs to another token). A token's chats are stored as ``<token id>:<chat>``."""
    message = (
        Message.objects.filter(
            pk=message_id,
            transport=Transport.API,
            direction=Direction.INBOUND,
            chat__external_id__startswith=f"{token_id}:",
        )
        .only("pk", "status", "status_reason", "text", "created_at")
        .first()
    )
    if message is None:
        return None
    reply = (
        Message.objects.filter(reply_to=message, direction=Direction.OUTBOUND)
        .order_by("-pk")
        .values_list("text", flat=True)
        .first()
    )
    return StoredMessage(
        message_id=message.pk,
        status=message.status,
        reason=message.status_reason,
        text=message.text,
        reply=reply,
        created_at=message.created_at,
    )
