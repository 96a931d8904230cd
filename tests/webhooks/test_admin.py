"""Webhooks in the admin: the secret shown once, rotation, test events, deliveries with their
attempts, and resending."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from aisystem.events import system_event_emit
from aisystem.models import WebhookDelivery, WebhookSubscription
from tests.webhooks.conftest import Subscribe, deliver_due
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.django_db
SUBSCRIPTIONS = "admin:aisystem_webhooksubscription_changelist"
DELIVERIES = "admin:aisystem_webhookdelivery_changelist"


def add_form(**overrides: str) -> dict[str, str]:
    return {
        "name": "ops",
        "url": "https://hooks.example.com/in",
        "signing_secret": "",
        "event_types": '["job.failed"]',
        "is_active": "on",
        **overrides,
    }


def shown_secrets(html: str) -> list[str]:
    return re.findall(r'class="webhook-secret"[^>]*value="(whsec_[^"]+)"', html)


def test_adding_a_webhook_without_a_secret_generates_one_and_shows_it_once(
    staff_client: Any,
) -> None:
    response = staff_client.post(reverse("admin:aisystem_webhooksubscription_add"), add_form())

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [secret] = shown_secrets(response.content.decode())
    subscription = WebhookSubscription.objects.get()
    assert subscription.signing_secret == secret
    assert subscription.event_types == ["job.failed"]
    change = staff_client.get(
        reverse("admin:aisystem_webhooksubscription_change", args=[subscription.pk])
    )
    assert secret not in change.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "http://127.0.0.1:6379/", "private, loopback or link-local"),
        ("url", "ftp://hooks.example.com/", "only http:// and https://"),
        ("url", "https://", "Enter a valid URL"),
        ("event_types", '["gate.allowed"]', "internal (not sent by webhook)"),
        ("event_types", '["job.failed", "nope"]', "Event type nope is unknown"),
        ("event_types", '"job.failed"', "A JSON list of event types"),
    ],
)
def test_the_add_form_explains_a_bad_url_or_event_type(
    staff_client: Any, field: str, value: str, message: str
) -> None:
    response = staff_client.post(
        reverse("admin:aisystem_webhooksubscription_add"), add_form(**{field: value})
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_for_a_day(
    staff_client: Any, subscribe: Subscribe
) -> None:
    subscription, old = subscribe("job.failed")

    response = staff_client.post(
        reverse(SUBSCRIPTIONS), {"action": "rotate_secret", "_selected_action": [subscription.pk]}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [new] = shown_secrets(response.content.decode())
    assert old not in response.content.decode()
    subscription.refresh_from_db()
    assert (subscription.signing_secret, subscription.previous_secret) == (new, old)
    assert subscription.previous_secret_expires_at is not None
    overlap = subscription.previous_secret_expires_at - timezone.now()
    assert timedelta(hours=23) < overlap <= timedelta(hours=24)


def test_send_a_test_event_delivers_a_signed_test_to_the_endpoint(
    staff_client: Any, subscribe: Subscribe, receiver: Receiver
) -> None:
    subscription, secret = subscribe("job.failed")

    response = staff_client.post(
        reverse(SUBSCRIPTIONS),
        {"action": "send_test_event", "_selected_action": [subscription.pk]},
        follow=True,
    )
    deliver_due()

    assert "Queued a test event for 1 webhooks." in response.content.decode()
    [request] = receiver.received
    assert request.json["type"] == "webhook.test" and request.verified_by == (secret,)


def test_a_delivery_page_shows_each_attempt_with_status_latency_and_excerpt(
    staff_client: Any, subscribe: Subscribe, receiver: Receiver
) -> None:
    subscribe("job.failed")
    receiver.respond_with(503)
    system_event_emit("job.failed", "failed", job="j", func="f", group="")
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    attempt = delivery.attempt_log.get()

    listing = staff_client.get(reverse(DELIVERIES)).content.decode()
    page = staff_client.get(reverse("admin:aisystem_webhookdelivery_change", args=[delivery.pk]))

    html = page.content.decode()
    assert delivery.webhook_id in listing and "job.failed" in listing
    assert page.status_code == 200
    assert "503" in html and "service unavailable, try later" in html
    assert f"{attempt.latency_ms}" in html
    assert 'name="_save"' not in html


def test_resend_queues_a_delivery_again_with_its_webhook_id(
    staff_client: Any, subscribe: Subscribe, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = ()
    subscribe("job.failed")
    receiver.respond_with(500)
    system_event_emit("job.failed", "failed", job="j", func="f", group="")
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DEAD

    staff_client.post(reverse(DELIVERIES), {"action": "resend", "_selected_action": [delivery.pk]})
    deliver_due()

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert {request.webhook_id for request in receiver.received} == {delivery.webhook_id}


def test_activating_re_enables_an_endpoint_disabled_for_failing(
    staff_client: Any, subscribe: Subscribe
) -> None:
    subscription, _ = subscribe("job.failed")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        disabled_at=timezone.now(), failing_since=timezone.now() - timedelta(days=6)
    )

    staff_client.post(
        reverse(SUBSCRIPTIONS), {"action": "activate", "_selected_action": [subscription.pk]}
    )

    subscription.refresh_from_db()
    assert (subscription.disabled_at, subscription.failing_since) == (None, None)
