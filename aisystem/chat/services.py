"""Writes for the browser chat: handing over replies that waited in the outbox.

A message answered later (it was deferred while Claude was unavailable) gets its reply
through the outbox, as on Telegram. A browser is only reachable while its page is open, so
the page's connection takes the chat's pending items itself, on connect and every few
seconds (``consumers.OUTBOX_POLL_SECONDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from aisystem.models import Direction, Message, MessageStatus, OutboxItem, Transport


@dataclass(frozen=True)
class OutboxReply:
    item_id: int
    text: str
    reply_to: str  # the client id of the message it answers


def web_outbox_take(*, chat_external_id: str, now: datetime, limit: int = 20) -> list[OutboxReply]:
    """The chat's pending replies, oldest first, marked sent (and their stored replies
    delivered). Each is taken with a conditional UPDATE, so two open tabs never both get
    one. Marked before the socket write: should that write fail, the reply is still in the
    conversation the page loads on reconnect, rather than sent twice."""
    with transaction.atomic():
        rows = list(
            OutboxItem.objects.filter(
                transport=Transport.WEB,
                chat__transport=Transport.WEB,
                chat__external_id=chat_external_id,
                status=OutboxItem.Status.PENDING,
                available_at__lte=now,
            )
            .order_by("pk")
            .values_list("pk", "chat_id", "text", "reply_to_transport_message_id")[:limit]
        )
        taken: list[OutboxReply] = []
        for pk, _chat_pk, text, reply_to in rows:
            claimed = OutboxItem.objects.filter(pk=pk, status=OutboxItem.Status.PENDING).update(
                status=OutboxItem.Status.SENT, sent_at=now, sent_transport_message_id=f"web-{pk}"
            )
            if claimed:
                taken.append(OutboxReply(item_id=pk, text=text, reply_to=reply_to))
        if taken:
            # The deferred-answer job stores the reply as "outbox-<item id>", processing.
            Message.objects.filter(
                chat_id=rows[0][1],
                direction=Direction.OUTBOUND,
                status=MessageStatus.PROCESSING,
                transport_message_id__in=[f"outbox-{reply.item_id}" for reply in taken],
            ).update(status=MessageStatus.DELIVERED, status_reason="", sent_at=now)
    return taken
