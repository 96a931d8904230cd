"""Delivering one webhook: claim it, POST it, record what happened.

Any number of workers may run ``webhook_delivery_attempt`` for the same delivery at once: the
claim is a conditional UPDATE (status pending or sending, due, and still at the attempt count
the worker read), so exactly one of them wins each attempt, and its lease
(``next_attempt_at`` of a sending row) says how long the others leave it alone. A worker
killed mid-POST never records anything; when its lease has run out the delivery is due again,
and the sweep (``webhook_deliveries_sweep``, every minute) hands it to a worker, which sends
it with the same ``webhook-id``: at least once, never lost.

Recording is conditional too (still sending, still our attempt number): a worker that outlived
its lease cannot overwrite the outcome of the one that took over.

Each recorded attempt counts in ``aisystem_webhook_deliveries_total{outcome}`` once it commits:
delivered, failed (another attempt is scheduled), dead (none is left) or superseded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from aisystem.events import PendingEvent, events_record, webhook_jobs_enqueue
from aisystem.metrics.instruments import webhook_attempt_observe
from aisystem.models import (
    Event,
    ExternalCall,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from aisystem.webhooks.http import HttpResult, webhook_post
from aisystem.webhooks.retry import retry_delay
from aisystem.webhooks.signing import SecretUnusable, webhook_body, webhook_headers

Status = WebhookDelivery.Status
INTERRUPTED = "interrupted: the worker stopped before an answer came"
SWEEP_BATCH = 500

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """One attempt this worker won: everything the POST needs, read inside the claim."""

    delivery_id: int
    subscription_id: int
    number: int
    attempts_before_resend: int
    webhook_id: str
    url: str
    signing_secrets: tuple[str, ...]
    body: bytes


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """Make the next attempt of a delivery if it is due and nobody else is making it. Returns
    the delivery's status after the attempt, or None if there was nothing to do."""
    claim = webhook_delivery_claim(delivery_id=delivery_id, now=now or timezone.now())
    if claim is None:
        return None
    result = _send(claim)
    return webhook_delivery_record(claim=claim, result=result, now=timezone.now())


def webhook_delivery_claim(*, delivery_id: int, now: datetime) -> Claim | None:
    """Win the next attempt, or None: not due, being sent by a live worker, finished, or its
    endpoint switched off. Closes an attempt left open by a worker that died."""
    delivery = (
        WebhookDelivery.objects.select_related("subscription", "event")
        .filter(
            pk=delivery_id, status__in=(Status.PENDING, Status.SENDING), next_attempt_at__lte=now
        )
        .first()
    )
    if delivery is None:
        return None
    subscription = delivery.subscription
    if not subscription.is_active or subscription.disabled_at is not None:
        return None
    number = delivery.attempts + 1
    lease = timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    with transaction.atomic():
        won = WebhookDelivery.objects.filter(
            pk=delivery_id,
            status__in=(Status.PENDING, Status.SENDING),
            next_attempt_at__lte=now,
            attempts=delivery.attempts,
        ).update(status=Status.SENDING, attempts=number, next_attempt_at=now + lease)
        if not won:
            return None
        WebhookAttempt.objects.filter(delivery_id=delivery_id, finished_at=None).update(
            finished_at=now, error=INTERRUPTED
        )
        WebhookAttempt.objects.create(delivery_id=delivery_id, number=number, started_at=now)
    return Claim(
        delivery_id=delivery_id,
        subscription_id=subscription.pk,
        number=number,
        attempts_before_resend=delivery.attempts_before_resend,
        webhook_id=delivery.webhook_id,
        url=subscription.url,
        signing_secrets=_signing_secrets(subscription, now),
        body=webhook_body(delivery.event),
    )


def webhook_delivery_record(*, claim: Claim, result: HttpResult, now: datetime) -> str:
    """Store the attempt's outcome: delivered, pending again (the next retry), or dead after
    the schedule's last. Returns the status, or "superseded" if another worker took the
    delivery over meanwhile (its attempt decides)."""
    ExternalCall.objects.create(
        service="webhook",
        operation="deliver",
        ok=result.ok,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        request_id=claim.webhook_id,
        error=_failure(result)[:500] if not result.ok else "",
        created_at=now,
    )
    with transaction.atomic():
        WebhookAttempt.objects.filter(delivery_id=claim.delivery_id, number=claim.number).update(
            finished_at=now,
            ok=result.ok,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.excerpt,
            error="" if result.ok else _failure(result),
        )
        status, changes = _next_state(claim, result, now)
        recorded = WebhookDelivery.objects.filter(
            pk=claim.delivery_id, status=Status.SENDING, attempts=claim.number
        ).update(
            status=status,
            last_status_code=result.status_code,
            last_latency_ms=result.latency_ms,
            last_response_excerpt=result.excerpt,
            last_error="" if result.ok else _failure(result),
            **changes,
        )
        outcome = _OUTCOMES.get(status, status) if recorded else "superseded"
        transaction.on_commit(partial(webhook_attempt_observe, outcome), robust=True)
        if not recorded:
            return "superseded"
        _subscription_note(claim.subscription_id, result, now)
    return status


# A recorded attempt's resulting status as the metrics' outcome label.
_OUTCOMES: dict[str, str] = {
    Status.DELIVERED: "delivered",
    Status.PENDING: "failed",
    Status.DEAD: "dead",
}


def webhook_deliveries_sweep(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Queue a job for each delivery that is due: a retry whose time has come, one whose job
    never got queued, one whose worker died (its lease ran out). Returns how many.

    A delivery whose own job is still queued may get a second job; the claim lets only one
    of them send."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            status__in=(Status.PENDING, Status.SENDING),
            next_attempt_at__lte=now,
            subscription__is_active=True,
            subscription__disabled_at=None,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    webhook_jobs_enqueue(due)
    return len(due)


def _send(claim: Claim) -> HttpResult:
    sent_at = timezone.now()
    if not claim.signing_secrets:
        return HttpResult(None, 0, error="no signing secret; rotate the secret in the admin")
    try:
        headers = webhook_headers(claim.webhook_id, sent_at, claim.body, claim.signing_secrets)
    except SecretUnusable as exc:
        return HttpResult(None, 0, error=str(exc))
    return webhook_post(
        claim.url,
        claim.body,
        headers,
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
    )


def _signing_secrets(subscription: WebhookSubscription, now: datetime) -> tuple[str, ...]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [subscription.signing_secret] if subscription.signing_secret else []
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        found.append(subscription.previous_secret)
    return tuple(found)


def _next_state(
    claim: Claim, result: HttpResult, now: datetime
) -> tuple[str, dict[str, datetime | None]]:
    if result.ok:
        return Status.DELIVERED, {"delivered_at": now, "next_attempt_at": None}
    failed = claim.number - claim.attempts_before_resend
    delay = retry_delay(settings.WEBHOOK_RETRY_SCHEDULE, failed)
    if delay is None:
        return Status.DEAD, {"next_attempt_at": None}
    return Status.PENDING, {"next_attempt_at": now + delay}


def _subscription_note(subscription_id: int, result: HttpResult, now: datetime) -> None:
    """The endpoint's health: a success clears the failure streak; a streak older than the
    limit disables the endpoint, once, with a ``webhook.disabled`` event."""
    rows = WebhookSubscription.objects.filter(pk=subscription_id)
    if result.ok:
        rows.update(
            failure_count=0,
            failing_since=None,
            last_delivery_at=now,
            last_status=f"HTTP {result.status_code}",
        )
        return
    rows.update(
        failure_count=F("failure_count") + 1,
        failing_since=Coalesce("failing_since", Value(now)),
        last_status=_failure(result)[:64],
    )
    cutoff = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    if rows.filter(disabled_at=None, failing_since__lte=cutoff).update(disabled_at=now):
        _disabled_event(rows.get(), _failure(result))


def _disabled_event(subscription: WebhookSubscription, error: str) -> None:
    failing_since = subscription.failing_since or subscription.disabled_at or timezone.now()
    events_record(
        [
            PendingEvent(
                kind="webhook.disabled",
                summary=f"Webhook {subscription.name!r} disabled: failing since "
                f"{failing_since:%Y-%m-%d %H:%M} UTC",
                level=Event.Level.ERROR,
                data={
                    "subscription": subscription.name,
                    "subscription_id": subscription.pk,
                    "failing_since": failing_since.isoformat(),
                    "last_error": error[:255],
                },
            )
        ]
    )


def _failure(result: HttpResult) -> str:
    if result.error:
        return result.error
    return f"HTTP {result.status_code}"
