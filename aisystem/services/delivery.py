from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from aisystem.models import OutboxItem
from aisystem.models.delivery import ReplyDelivery


def outbox_items_retry(*, items: QuerySet[OutboxItem]) -> int:
    """Queue the failed or waiting ones among ``items`` for delivery now, with a fresh attempt
    count; returns how many. Items being sent, or sent, are left alone: retrying one that is
    going out right now could deliver it twice."""
    return items.filter(status__in=[OutboxItem.Status.FAILED, OutboxItem.Status.PENDING]).update(
        status=OutboxItem.Status.PENDING, available_at=timezone.now(), attempts=0
    )


# --- What of a reply is on screen (``ReplyDelivery``) ---------------------------------------


@dataclass(frozen=True)
class DeliveredPart:
    """One message sent for a reply: the random id its send used, and its id once known."""

    random_id: int
    message_id: str = ""


@dataclass(frozen=True)
class DeliveryState:
    parts: tuple[DeliveredPart, ...] = ()
    complete: bool = False
    text: str = ""


def reply_delivery_get(*, key: str) -> DeliveryState | None:
    """What is stored for reply ``key``, or None if nothing was sent for it yet."""
    row = ReplyDelivery.objects.filter(key=key).values("parts", "complete", "text").first()
    if row is None:
        return None
    parts = tuple(
        DeliveredPart(random_id=int(part["random_id"]), message_id=str(part["message_id"]))
        for part in row["parts"]
    )
    return DeliveryState(parts=parts, complete=bool(row["complete"]), text=str(row["text"]))


def reply_delivery_write(
    *, key: str, transport: str, chat_external_id: str, state: DeliveryState, new: bool = False
) -> None:
    """Store ``state`` as reply ``key``'s: one UPDATE, or with ``new`` (nothing stored yet, as
    far as the caller knows) one INSERT. Either falls back to the other."""
    fields = {
        "parts": [
            {"random_id": part.random_id, "message_id": part.message_id} for part in state.parts
        ],
        "complete": state.complete,
        "text": state.text,
        "updated_at": timezone.now(),
    }
    if not new and ReplyDelivery.objects.filter(key=key).update(**fields):
        return
    try:
        with transaction.atomic():
            ReplyDelivery.objects.create(
                key=key, transport=transport, chat_external_id=chat_external_id, **fields
            )
    except IntegrityError:
        ReplyDelivery.objects.filter(key=key).update(**fields)


def reply_deliveries_purge(*, older_than: datetime) -> int:
    """Forget replies last written before ``older_than`` (nothing resumes or retries them any
    more); returns how many."""
    deleted, _ = ReplyDelivery.objects.filter(updated_at__lt=older_than).delete()
    return deleted
