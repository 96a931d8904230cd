from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from aisystem.models import OutboxItem


def outbox_items_retry(*, items: QuerySet[OutboxItem]) -> int:
    """Queue the failed or waiting ones among ``items`` for delivery now, with a fresh attempt
    count; returns how many. Items being sent, or sent, are left alone: retrying one that is
    going out right now could deliver it twice."""
    return items.filter(status__in=[OutboxItem.Status.FAILED, OutboxItem.Status.PENDING]).update(
        status=OutboxItem.Status.PENDING, available_at=timezone.now(), attempts=0
    )
