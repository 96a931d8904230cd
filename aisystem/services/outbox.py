"""Queueing a reply for a transport's sender: the bridge drains Telegram's, the browser
chat's open page takes its own (``aisystem.chat.services``)."""

from __future__ import annotations

from aisystem.models import OutboxItem


def outbox_enqueue(
    *,
    transport: str,
    chat_pk: int,
    text: str,
    idempotency_key: str,
    reply_to: str = "",
    source_message_pk: int | None = None,
) -> tuple[int, bool]:
    """Queue a reply; returns (item id, created). The same ``idempotency_key`` again returns
    the existing item and changes nothing, so enqueueing one reply twice is harmless."""
    item, created = OutboxItem.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "transport": transport,
            "chat_id": chat_pk,
            "text": text,
            "reply_to_transport_message_id": reply_to,
            "source_message_id": source_message_pk,
        },
    )
    return item.pk, created
