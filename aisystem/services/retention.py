"""Retention: old events, external calls and webhook deliveries are deleted, in batches.

Each table has its limit in days (``settings.RETENTION``, from ``AISYSTEM_RETENTION_*``). The
daily job deletes at most ``batch`` rows per statement (by primary key, oldest first), so no
statement holds a long lock: SQLite has one writer, and PostgreSQL would otherwise lock a
whole day's rows at once. A delivery still being sent, or waiting for a retry, is kept with
its event however old they are: retention never loses an undelivered event. Messages are
kept unless their workspace sets ``message_retention_days``; then its finished messages
(answered, delivered, rejected, ignored, failed) older than that go. A message still on its
way (received, processing, deferred, interrupted) is kept, however old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from aisystem.models import (
    Event,
    ExternalCall,
    Message,
    MessageStatus,
    WebhookDelivery,
    Workspace,
)
from aisystem.services.idempotency import idempotency_keys_purge

BATCH = 1000
_OPEN = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING)
_FINISHED = (
    MessageStatus.ANSWERED,
    MessageStatus.DELIVERED,
    MessageStatus.REJECTED,
    MessageStatus.IGNORED,
    MessageStatus.FAILED,
)


@dataclass(frozen=True)
class Purged:
    events: int
    external_calls: int
    webhook_deliveries: int
    messages: int = 0


def retention_purge(*, now: datetime | None = None, batch: int = BATCH) -> Purged:
    """Delete what is past its retention; returns how many rows of each went."""
    now = now or timezone.now()
    days = settings.RETENTION
    deliveries = WebhookDelivery.objects.filter(
        created_at__lt=now - timedelta(days=days["WEBHOOK_DELIVERIES_DAYS"])
    ).exclude(status__in=_OPEN)
    events = Event.objects.filter(created_at__lt=now - timedelta(days=days["EVENTS_DAYS"])).exclude(
        webhook_deliveries__status__in=_OPEN
    )
    calls = ExternalCall.objects.filter(
        created_at__lt=now - timedelta(days=days["EXTERNAL_CALLS_DAYS"])
    )
    messages = 0
    for workspace_id, keep_days in Workspace.objects.filter(
        message_retention_days__isnull=False
    ).values_list("pk", "message_retention_days"):
        old = Message.objects.filter(
            conversation__workspace_id=workspace_id,
            created_at__lt=now - timedelta(days=keep_days or 0),  # not null: filtered above
            status__in=_FINISHED,
        )
        messages += _in_batches(old, batch)
    idempotency_keys_purge(now=now, batch=batch)  # REST Idempotency-Keys, kept 24 hours
    return Purged(
        webhook_deliveries=_in_batches(deliveries, batch),
        events=_in_batches(events, batch),
        external_calls=_in_batches(calls, batch),
        messages=messages,
    )


def _in_batches(rows: QuerySet[Model], batch: int) -> int:
    """Delete ``rows`` ``batch`` primary keys at a time, each batch its own transaction."""
    total = 0
    while True:
        keys = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
        if not keys:
            return total
        with transaction.atomic():
            rows.model._default_manager.filter(pk__in=keys).delete()
        total += len(keys)
