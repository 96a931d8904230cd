"""Reads for the REST API, scoped to one token, as plain values.

A token's chats and end users are stored in its namespace, ``<token id>:<client id>``
(``namespaced``), so every read here is confined to the token's own rows by construction: a
chat or message of another token is simply not found (a 404, never a leak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from aisystem.models import Chat, Direction, Message, Transport

HISTORY_PAGE_DEFAULT = 50
HISTORY_PAGE_MAX = 200


def namespaced(token_id: int, value: str) -> str:
    """The stored external id of an API client's chat or user id: ``<token id>:<value>``."""
    return f"{token_id}:{value}"


@dataclass(frozen=True)
class StoredMessage:
    """An inbound API message and the text of its latest reply (None while there is none).
    ``sender_id`` is the stored (namespaced) id of the end user who sent it."""

    message_id: int
    status: str  # the stored MessageStatus
    reason: str
    text: str
    reply: str | None
    created_at: datetime
    sender_id: str = ""


def api_message_for_token(*, token_id: int, message_id: int) -> StoredMessage | None:
    """The message ``message_id`` if it was sent with this token, else None (also when it
    exists but belongs to another token). A token's chats are stored as ``<token id>:<chat>``."""
    return _stored(
        Message.objects.filter(
            pk=message_id,
            transport=Transport.API,
            direction=Direction.INBOUND,
            chat__external_id__startswith=namespaced(token_id, ""),
        )
    )


def api_message_by_client_id(
    *, token_id: int, chat_id: str, transport_message_id: str
) -> StoredMessage | None:
    """The inbound message of the token's chat ``chat_id`` (the client's id) recorded under
    ``transport_message_id`` (its dedup key: the client's ``message_id``, or the one an
    ``Idempotency-Key`` stands for), or None while there is none."""
    return _stored(
        Message.objects.filter(
            transport=Transport.API,
            direction=Direction.INBOUND,
            chat__transport=Transport.API,
            chat__external_id=namespaced(token_id, chat_id),
            transport_message_id=transport_message_id,
        )
    )


def _stored(messages: QuerySet[Message]) -> StoredMessage | None:
    message = (
        messages.select_related("identity")
        .only("pk", "status", "status_reason", "text", "created_at", "identity__external_id")
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
        sender_id=message.identity.external_id if message.identity else "",
    )


@dataclass(frozen=True)
class ChatItem:
    """One stored message of an API chat, either way: what the history endpoint lists."""

    id: int
    direction: str  # "in" (from the client's end user) or "out" (the assistant's)
    text: str
    status: str  # the stored MessageStatus
    created_at: datetime


def api_chat_history(
    *, token_id: int, chat_id: str, after: int = 0, limit: int = HISTORY_PAGE_DEFAULT
) -> list[ChatItem] | None:
    """The messages of the token's API chat ``chat_id`` (the client's id) with an id above
    ``after``, oldest first, at most ``limit`` (capped at HISTORY_PAGE_MAX). None when the
    token has no such chat; an empty list when it has, but nothing after ``after``.

    Ids increase with storage order, so ``after=<the last id seen>`` pages forward and later
    replies (a deferred answer, for one) show up on the next poll."""
    chat_pk = (
        Chat.objects.filter(transport=Transport.API, external_id=namespaced(token_id, chat_id))
        .values_list("pk", flat=True)
        .first()
    )
    if chat_pk is None:
        return None
    rows = (
        Message.objects.filter(chat_id=chat_pk, pk__gt=after)
        .order_by("pk")
        .values_list("pk", "direction", "text", "status", "created_at")[
            : max(1, min(limit, HISTORY_PAGE_MAX))
        ]
    )
    return [
        ChatItem(id=pk, direction=direction, text=text, status=status, created_at=created_at)
        for pk, direction, text, status, created_at in rows
    ]
