"""Fixtures for the webhook tests: a verifying receiver on loopback, and subscriptions to it.

The receiver is on 127.0.0.1, which the URL safety rules refuse: these fixtures allow private
addresses, as ``AISYSTEM_WEBHOOK_ALLOW_PRIVATE=true`` does, except where a test says not to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from aisystem.models import WebhookDelivery, WebhookSubscription
from aisystem.webhooks.delivery import webhook_delivery_attempt
from aisystem.webhooks.services import webhook_subscription_create
from tests.webhooks.receiver import Receiver, running_receiver

Subscribe = Callable[..., tuple[WebhookSubscription, str]]


@pytest.fixture
def allow_private(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver(allow_private: None) -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def subscribe(receiver: Receiver) -> Subscribe:
    """``subscribe("job.failed", ...)``: a subscription to the receiver, whose secret the
    receiver then verifies with."""

    def make(*kinds: str, name: str = "ops") -> tuple[WebhookSubscription, str]:
        subscription, secret = webhook_subscription_create(
            name=name, url=receiver.url, event_types=list(kinds)
        )
        receiver.secrets.append(secret)
        return subscription, secret

    return make


def make_due(delivery: WebhookDelivery) -> None:
    """Advance the clock for one delivery: its next attempt (or its lease) is now past."""
    waiting = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING)
    WebhookDelivery.objects.filter(pk=delivery.pk, status__in=waiting).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def deliver_due() -> list[str | None]:
    """What the workers would do with every due delivery, one attempt each, in this thread."""
    due = WebhookDelivery.objects.filter(
        status__in=(WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING),
        next_attempt_at__lte=timezone.now(),
    ).values_list("pk", flat=True)
    return [webhook_delivery_attempt(delivery_id=pk) for pk in list(due)]
