"""Every write to webhook subscriptions and deliveries that staff or the command line make.

The admin and ``manage.py webhooks`` only parse input and call these; they raise
``WebhookConfigError`` with a message fit to show as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from aisystem.event_catalog import EVENT_TYPES, PUBLIC_EVENT_TYPES
from aisystem.events import PendingEvent, events_record, webhook_id_new, webhook_jobs_enqueue
from aisystem.models import WebhookDelivery, WebhookSubscription
from aisystem.webhooks.safety import UnsafeUrl, url_validate
from aisystem.webhooks.signing import secret_generate

Status = WebhookDelivery.Status
NAME_MAX = 100
URL_MAX = 500


class WebhookConfigError(ValueError):
    """A subscription cannot be saved as given; the message says what to change."""


def webhook_url_check(url: str) -> str:
    """The URL, stripped, if webhooks may be sent to it; raises ``WebhookConfigError``."""
    if len(url.strip()) > URL_MAX:
        raise WebhookConfigError(f"The URL is longer than {URL_MAX} characters.")
    try:
        return url_validate(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    except UnsafeUrl as exc:
        raise WebhookConfigError(str(exc)) from None


def event_types_check(kinds: Iterable[str]) -> list[str]:
    """The event types, deduplicated in order, if every one is public; raises
    ``WebhookConfigError`` naming the unknown or internal ones and the valid choices."""
    chosen = list(dict.fromkeys(kind.strip() for kind in kinds if kind.strip()))
    unknown = [kind for kind in chosen if kind not in PUBLIC_EVENT_TYPES]
    if unknown:
        internal = [kind for kind in unknown if kind in EVENT_TYPES]
        what = "internal (not sent by webhook)" if internal == unknown else "unknown"
        named = f"type {unknown[0]} is" if len(unknown) == 1 else f"types {', '.join(unknown)} are"
        raise WebhookConfigError(
            f"Event {named} {what}. Choose from: " + ", ".join(PUBLIC_EVENT_TYPES)
        )
    return chosen


def webhook_subscription_create(
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    signing_secret: str = "",
    is_active: bool = True,
) -> tuple[WebhookSubscription, str]:
    """A new subscription; returns it with its secret, which staff must copy to the receiver
    (it is stored encrypted and shown only this once). Without ``signing_secret`` (one the
    receiver made) a ``whsec_`` secret is generated."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise WebhookConfigError(f"The name must be 1 to {NAME_MAX} characters.")
    if WebhookSubscription.objects.filter(name=name).exists():
        raise WebhookConfigError(f"A webhook named {name!r} exists already.")
    secret = signing_secret.strip() or secret_generate()
    subscription = WebhookSubscription.objects.create(
        name=name,
        url=webhook_url_check(url),
        event_types=event_types_check(event_types),
        signing_secret=secret,
        is_active=is_active,
    )
    return subscription, secret


def webhook_subscription_remove(*, name: str) -> bool:
    """Delete the subscription and its deliveries; False if there is none by that name."""
    deleted, _ = WebhookSubscription.objects.filter(name=name.strip()).delete()
    return bool(deleted)


@transaction.atomic
def webhook_subscription_rotate_secret(*, subscription_id: int, now: datetime | None = None) -> str:
    """A new signing secret; the current one keeps signing too for the overlap
    (``WEBHOOK_ROTATION_OVERLAP_HOURS``), so the receiver can switch without a gap.
    Returns the new secret (shown once)."""
    now = now or timezone.now()
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    secret = secret_generate()
    overlap = timedelta(hours=settings.WEBHOOK_ROTATION_OVERLAP_HOURS)
    subscription.previous_secret = subscription.signing_secret
    subscription.previous_secret_expires_at = now + overlap if subscription.signing_secret else None
    subscription.signing_secret = secret
    subscription.save(
        update_fields=["signing_secret", "previous_secret", "previous_secret_expires_at"]
    )
    return secret


def webhook_subscriptions_activate(*, subscription_ids: Sequence[int]) -> int:
    """Switch endpoints on, including those disabled for failing (their streak starts over);
    their waiting deliveries go out with the next sweep."""
    return WebhookSubscription.objects.filter(pk__in=subscription_ids).update(
        is_active=True, disabled_at=None, failing_since=None, failure_count=0
    )


def webhook_subscriptions_deactivate(*, subscription_ids: Sequence[int]) -> int:
    """Switch endpoints off: no new deliveries; waiting ones stay until switched back on."""
    return WebhookSubscription.objects.filter(pk__in=subscription_ids).update(is_active=False)


@transaction.atomic
def webhook_deliveries_resend(*, delivery_ids: Sequence[int], now: datetime | None = None) -> int:
    """Send deliveries again (delivered or dead ones too), with the same ``webhook-id``, and
    a fresh run of the retry schedule. One being sent right now is left alone."""
    now = now or timezone.now()
    rows = WebhookDelivery.objects.filter(pk__in=delivery_ids).exclude(status=Status.SENDING)
    ids = list(rows.values_list("pk", flat=True))
    resent = WebhookDelivery.objects.filter(pk__in=ids).update(
        status=Status.PENDING, next_attempt_at=now, attempts_before_resend=F("attempts")
    )
    transaction.on_commit(partial(webhook_jobs_enqueue, ids))
    return resent


@transaction.atomic
def webhook_test_send(*, subscription_id: int) -> WebhookDelivery:
    """A ``webhook.test`` event for this one endpoint, to check the URL and the receiver's
    signature verification. It goes out like any delivery (so not while switched off)."""
    subscription = WebhookSubscription.objects.get(pk=subscription_id)
    [event] = events_record(
        [
            PendingEvent(
                kind="webhook.test",
                summary=f"Test event for webhook {subscription.name!r}",
                data={
                    "subscription": subscription.name,
                    "subscription_id": subscription.pk,
                    "message": "A test event from aisystem.",
                },
            )
        ]
    )
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event=event,
        webhook_id=webhook_id_new(),
        next_attempt_at=event.created_at,
    )
    transaction.on_commit(partial(webhook_jobs_enqueue, [delivery.pk]))
    return delivery
