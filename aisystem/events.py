"""Events: each step of a message's journey and each system change, stored and broadcast.

Every event is written to the ``Event`` table (the live feed loads the latest from there).
Each web process's relay (``aisystem.live.relay``) then takes it to that process's browsers,
from one of two sources (``settings.LIVE_FEED["SOURCE"]``):

* ``"database"`` (the embedded default): the relay reads new rows from the table; nothing is
  broadcast here, or a browser would see the event twice;
* ``"channel_layer"`` (``REDIS_URL``): once the transaction commits, the events are sent as one
  ``feed_message`` to the group ``LIVE_FEED_GROUP`` on the ``LIVE_FEED_LAYER`` layer
  (channels-redis pub/sub), whose members are the relays, one per web process, not the
  browsers.

Outgoing webhooks consume the same stream, as a transactional outbox: ``events_record`` writes
a ``WebhookDelivery`` for every active subscription to a public event type (see
``aisystem.event_catalog``) in the same transaction as the events, so an event that committed
always has its deliveries, and one that rolled back has none. After commit a django-q2 job is
queued per delivery; if that hand-over is lost (the process dies first), the minutely sweep
(``aisystem.webhooks.delivery.webhook_deliveries_sweep``) finds the delivery anyway. The
fan-out lives here rather than in ``aisystem.webhooks`` because that package records events
itself (``webhook.disabled``): this module must not import it.

Every event is checked against the catalog; a mismatch is logged, never raised: the event is
still worth storing, and a message must not fail over its audit trail.

Call these from synchronous code (the pipeline's store runs in a worker thread); never pass a
secret in ``data``: keys, session strings and tokens have no business in an event.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from aisystem.alerts.dispatch import alerts_enqueue
from aisystem.event_catalog import EventSchemaError, event_is_public, event_validate
from aisystem.models import Event, WebhookDelivery, WebhookSubscription

LIVE_FEED_GROUP = "live-feed"
LIVE_FEED_LAYER = "events"  # the channel-layer alias broadcasts go out on (REDIS_URL only)
PREVIEW_CHARS = 200

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingEvent:
    """An event not yet stored; the pipeline collects a message's events and stores them once."""

    kind: str
    summary: str
    level: str = Event.Level.INFO
    data: Mapping[str, object] = field(default_factory=dict)
    created_at: datetime = field(default_factory=timezone.now)


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Message text as shown to staff: truncated, never the whole of a long message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def events_record(
    events: Sequence[PendingEvent],
    *,
    transport: str = "",
    chat_id: int | None = None,
    message_id: int | None = None,
) -> list[Event]:
    """Store ``events`` in one INSERT, with their webhook deliveries in the same transaction;
    with the channel-layer source, broadcast them after commit."""
    rows = [
        Event(
            kind=event.kind,
            level=event.level,
            summary=event.summary[:255],
            transport=transport,
            chat_id=chat_id,
            message_id=message_id,
            data=dict(event.data),
            created_at=event.created_at,
        )
        for event in events
    ]
    if not rows:
        return rows
    for row in rows:
        _check(row)
    with transaction.atomic(savepoint=False):
        Event.objects.bulk_create(rows)
        _webhooks_fan_out(rows)
        alerts_enqueue(rows)  # staff alerts: claimed here, sent after commit; never raises
    if settings.LIVE_FEED["SOURCE"] == "channel_layer":
        payloads = [event_payload(row) for row in rows]
        transaction.on_commit(partial(_broadcast, payloads))
    return rows


def system_event_emit(
    kind: str, summary: str, *, level: str = Event.Level.WARNING, **data: object
) -> Event:
    """Record a system event (breaker opened, credential invalid, bridge disconnected…)."""
    return events_record([PendingEvent(kind=kind, summary=summary, level=level, data=data)])[0]


def _check(row: Event) -> None:
    try:
        event_validate(row.kind, row.data)
    except EventSchemaError as exc:
        logger.warning("event does not match the catalog: %s", exc)


def _webhooks_fan_out(rows: Sequence[Event]) -> None:
    """A pending delivery per public event and matching subscription (inside the caller's
    transaction), and a job for each once it commits."""
    public = [row for row in rows if event_is_public(row.kind)]
    if not public:
        return
    subscriptions = list(
        WebhookSubscription.objects.filter(is_active=True, disabled_at=None).values_list(
            "pk", "event_types"
        )
    )
    deliveries = [
        WebhookDelivery(
            subscription_id=pk,
            event=row,
            webhook_id=webhook_id_new(),
            next_attempt_at=row.created_at,
        )
        for row in public
        for pk, kinds in subscriptions
        if not kinds or row.kind in kinds
    ]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        transaction.on_commit(partial(webhook_jobs_enqueue, [d.pk for d in deliveries]))


def webhook_id_new() -> str:
    """A delivery's ``webhook-id``: made once, kept for every attempt and resend."""
    return f"msg_{uuid.uuid4().hex}"


def webhook_jobs_enqueue(delivery_ids: Sequence[int]) -> None:
    """Queue a delivery job per id. A failure here loses nothing: the sweep finds them."""
    from django_q.tasks import async_task  # the broker's models: load late

    try:
        for delivery_id in delivery_ids:
            async_task("aisystem.tasks.webhook_deliver", delivery_id, group="webhooks")
    except Exception:
        logger.warning("could not queue webhook deliveries; the sweep will", exc_info=True)


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON shape browsers receive, for stored and live events alike."""
    return {
        "id": event.pk,
        "kind": event.kind,
        "level": event.level,
        "summary": event.summary,
        "transport": event.transport,
        "chat_id": event.chat_id,
        "message_id": event.message_id,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def feed_message(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The channel-layer message that carries ``payloads`` (``event_payload`` dicts, by id) to
    the relays and on to every live-feed socket: ``ids`` to tell events apart, ``text`` the
    browser frame, JSON-encoded once here rather than once per browser."""
    frame = {"type": "events", "events": list(payloads)}
    return {
        "type": "feed.events",
        "ids": [payload["id"] for payload in payloads],
        "text": json.dumps(frame, cls=DjangoJSONEncoder, separators=(",", ":")),
    }


def _broadcast(payloads: list[dict[str, Any]]) -> None:
    layer = get_channel_layer(LIVE_FEED_LAYER)
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(LIVE_FEED_GROUP, feed_message(payloads))
    except Exception:
        # The feed is a view on stored events; losing a broadcast must not fail a message.
        logger.warning("live feed broadcast failed", exc_info=True)
