"""The daily purge deletes what is past its retention and nothing else; a webhook delivery
still on its way is kept, with its event, however old."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from aisystem.models import Event, ExternalCall, Message, WebhookDelivery, WebhookSubscription
from aisystem.services.retention import retention_purge

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def days_ago(days: float) -> Any:
    return NOW - timedelta(days=days)


def event(age_days: float) -> Event:
    return Event.objects.create(kind="job.failed", summary="x", created_at=days_ago(age_days))


def delivery(of: Event, age_days: float, status: str) -> WebhookDelivery:
    subscription, _ = WebhookSubscription.objects.get_or_create(
        name="hook", defaults={"url": "https://example.test/hook"}
    )
    return WebhookDelivery.objects.create(
        subscription=subscription,
        event=of,
        webhook_id=f"msg_{of.pk}_{status}",
        status=status,
        created_at=days_ago(age_days),
    )


def test_old_rows_go_and_recent_ones_stay() -> None:
    old, recent = event(31), event(29)
    for age in (31, 29):
        ExternalCall.objects.create(
            service="anthropic", operation="messages", ok=True, created_at=days_ago(age)
        )
    kept = event(20)
    old_delivery = delivery(kept, 15, WebhookDelivery.Status.DELIVERED)
    recent_delivery = delivery(recent, 13, WebhookDelivery.Status.DEAD)

    purged = retention_purge(now=NOW, batch=1)

    assert (purged.events, purged.external_calls, purged.webhook_deliveries) == (1, 1, 1)
    assert set(Event.objects.values_list("pk", flat=True)) == {recent.pk, kept.pk}
    assert not Event.objects.filter(pk=old.pk).exists()
    assert ExternalCall.objects.get().created_at == days_ago(29)
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent_delivery.pk]
    assert not WebhookDelivery.objects.filter(pk=old_delivery.pk).exists()


@pytest.mark.parametrize("status", [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING])
def test_an_undelivered_webhook_keeps_itself_and_its_event(status: str) -> None:
    ancient = event(90)
    waiting = delivery(ancient, 60, status)

    purged = retention_purge(now=NOW)

    assert (purged.events, purged.webhook_deliveries) == (0, 0)
    assert Event.objects.filter(pk=ancient.pk).exists()
    assert WebhookDelivery.objects.filter(pk=waiting.pk).exists()


def test_the_limits_come_from_settings(settings: Any) -> None:
    settings.RETENTION = settings.RETENTION | {"EVENTS_DAYS": 3}
    event(4)
    event(2)

    assert retention_purge(now=NOW).events == 1


def test_the_daily_schedule_is_installed() -> None:
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="aisystem.tasks.purge_expired_records")
    assert schedule.schedule_type == Schedule.DAILY


def test_a_workspace_with_message_retention_loses_its_old_finished_messages_only() -> None:
    from tests.factories import ConversationFactory, MessageFactory

    short = ConversationFactory(workspace__message_retention_days=7)
    forever = ConversationFactory()
    gone = MessageFactory(
        conversation=short, chat=short.chat, status="answered", created_at=days_ago(8)
    )
    recent = MessageFactory(
        conversation=short, chat=short.chat, status="answered", created_at=days_ago(6)
    )
    waiting = MessageFactory(
        conversation=short, chat=short.chat, status="deferred", created_at=days_ago(30)
    )
    kept = MessageFactory(
        conversation=forever, chat=forever.chat, status="answered", created_at=days_ago(400)
    )

    assert retention_purge(now=NOW, batch=1).messages == 1

    remaining = set(Message.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk, waiting.pk, kept.pk}
    assert gone.pk not in remaining
