"""The bridge's own reads and writes of inbound messages, beside the pipeline's.

The pipeline stores a message when it starts processing it (``pipeline.admission.admit``). Two
things happen before that which only the bridge knows about:

* a message taken from Telegram but never started (queued in the dispatcher when a stop
  came, or arriving after intake closed) has no row yet, and Telegram will not send it again:
  ``messages_record_interrupted`` stores it as interrupted, so the next start fetches and
  resumes it like a message cut short (the pipeline's dedup claim resumes it once);
* an edit is a message of its own (``adapter.message_key``), but an edit that leaves the
  text as it was (a link preview appearing, media swapped under the same caption) asks
  nothing new: ``edit_changes_text`` compares it with the latest stored version;
* a post in a broadcast channel is answered only if staff enabled the channel
  (``Chat.channel_enabled``): an answer there is public to every subscriber.
  ``channel_post_taken`` says whether it is, and stores one that is not as ignored (reason
  "channel_not_enabled"), which also makes the channel appear in the admin's chats, where
  staff can enable it.

Sync functions, for ``sync_to_async``, each one short transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from aisystem.models import Direction, Message, MessageStatus
from pipeline.admission import Participants, participants_upsert
from pipeline.context_builder import describe_media
from pipeline.type_router import classify
from pipeline.types import InboundMessage
from telegram_bridge.adapter import EDIT_KEY_MARK, telegram_message_id

INTERRUPTED_REASON = "shutdown"  # as ``outcomes.messages_mark_interrupted`` marks them
CHANNEL_NOT_ENABLED = "channel_not_enabled"


def messages_record_interrupted(*, messages: Sequence[InboundMessage], now: datetime) -> int:
    """Store each message that has no row yet as interrupted (status reason "shutdown");
    rows that exist are left as they are. Returns how many rows were created."""
    created = 0
    with transaction.atomic():
        for message in messages:
            people = participants_upsert(message, now=now)  # as the pipeline would
            created += _record(message, people, MessageStatus.INTERRUPTED, INTERRUPTED_REASON, now)
    return created


def channel_post_taken(message: InboundMessage, *, now: datetime) -> bool:
    """True if ``message``, a post in a broadcast channel, is to be processed: staff enabled
    its channel. Otherwise it is stored as ignored (once: a repeat changes nothing)."""
    with transaction.atomic():
        people = participants_upsert(message, now=now)
        if people.chat.channel_enabled:
            return True
        _record(message, people, MessageStatus.IGNORED, CHANNEL_NOT_ENABLED, now)
    return False


def _record(
    message: InboundMessage, people: Participants, status: str, reason: str, now: datetime
) -> bool:
    """Store ``message`` with ``status`` unless its row exists; True if it was created."""
    _, made = Message.objects.get_or_create(
        transport=message.transport,
        chat=people.chat,
        transport_message_id=message.message_id,
        direction=Direction.INBOUND,
        defaults={
            "identity": people.identity,
            "kind": classify(message)[1],
            "is_edited": message.is_edited,
            "is_forwarded": message.is_forwarded,
            "status": status,
            "status_reason": reason,
            "text": message.text or describe_media(message),
            "sent_at": message.sent_at,
            "created_at": now,
        },
    )
    return made


def edit_changes_text(message: InboundMessage) -> bool:
    """True if edited ``message`` reads differently from the latest stored version of the
    same Telegram message (the original or an earlier edit), or if none is stored."""
    original = str(telegram_message_id(message.message_id))
    latest = (
        Message.objects.filter(
            Q(transport_message_id=original)
            | Q(transport_message_id__startswith=f"{original}{EDIT_KEY_MARK}"),
            transport=message.transport,
            chat__external_id=message.chat_id,
            direction=Direction.INBOUND,
        )
        .exclude(transport_message_id=message.message_id)
        .order_by("-sent_at", "-pk")
        .values_list("text", flat=True)
        .first()
    )
    return latest is None or latest != (message.text or describe_media(message))
