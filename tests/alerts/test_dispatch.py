"""Events become alerts: matched by rules, held back within a window, sent by a job to e-mail,
a Telegram chat or a webhook, resolved by the closing event — and never failing the event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from aisystem.alerts import dispatch
from aisystem.alerts.dispatch import alerts_deliver, alerts_deliver_pending
from aisystem.events import PendingEvent, events_record
from aisystem.models import Alert, AlertRule, AlertState, Event, OutboxItem, WebhookDelivery
from aisystem.services.outbox import outbox_enqueue
from tests.alerts.conftest import Emit, queued
from tests.factories import ChatFactory

pytestmark = pytest.mark.django_db

Rule = Callable[..., AlertRule]
BREAKER = {"service": "anthropic", "open_seconds": 30, "error": "overloaded (529)"}


def test_a_matching_event_sends_one_email(
    email_rule: Rule, emit: Emit, run_jobs: Callable[[], int]
) -> None:
    email_rule("breaker.opened")

    emit("breaker.opened", "anthropic: circuit breaker opened for 30 s", **BREAKER)
    run_jobs()

    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert message.subject == "[aisystem] anthropic: circuit breaker opened for 30 s"
    assert "breaker.opened" in message.body
    assert Alert.objects.get().state == AlertState.SENT


def test_the_alert_is_sent_by_a_job_queued_after_commit(email_rule: Rule, emit: Emit) -> None:
    email_rule("job.failed")

    emit("job.failed", job="j", func="math.sqrt", group="")

    assert queued("aisystem.tasks.alerts_deliver") == [([Alert.objects.get().pk],)]
    assert mail.outbox == []


def test_a_second_event_in_the_window_is_held_back_and_counted(
    email_rule: Rule, emit: Emit, run_jobs: Callable[[], int]
) -> None:
    email_rule("job.failed")

    for _ in range(3):
        emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert len(mail.outbox) == 1
    assert Alert.objects.get().suppressed == 2


def test_after_the_window_the_next_event_alerts_again(
    email_rule: Rule, emit: Emit, run_jobs: Callable[[], int]
) -> None:
    email_rule("job.failed", dedup_minutes=15)
    emit("job.failed", job="j", func="math.sqrt", group="")
    Alert.objects.update(window_ends_at=timezone.now() - timedelta(seconds=1))

    emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert len(mail.outbox) == 2


def test_sending_one_alert_twice_sends_it_once(email_rule: Rule, emit: Emit) -> None:
    email_rule("job.failed")
    emit("job.failed", job="j", func="math.sqrt", group="")
    [alert_id] = Alert.objects.values_list("pk", flat=True)

    sent = [alerts_deliver(alert_ids=[alert_id], outbox_enqueue=outbox_enqueue) for _ in "ab"]

    assert sent == [1, 0]
    assert len(mail.outbox) == 1


def test_two_rules_alert_independently(email_rule: Rule, emit: Emit, run_jobs: Any) -> None:
    email_rule("job.failed", name="ops", email_to="ops@example.com")
    email_rule("job.failed", name="dev", email_to="dev@example.com")

    emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert sorted(m.to[0] for m in mail.outbox) == ["dev@example.com", "ops@example.com"]


def test_the_breaker_closing_sends_resolved_and_opens_the_window_again(
    email_rule: Rule, emit: Emit, run_jobs: Callable[[], int]
) -> None:
    email_rule("breaker.opened")
    emit("breaker.opened", "anthropic: breaker opened", **BREAKER)
    run_jobs()

    emit("breaker.closed", "anthropic: breaker closed, calls flow again", service="anthropic")
    run_jobs()
    emit("breaker.opened", "anthropic: breaker opened again", **BREAKER)
    run_jobs()

    subjects = [message.subject for message in mail.outbox]
    assert subjects == [
        "[aisystem] anthropic: breaker opened",
        "[aisystem] Resolved: anthropic: breaker closed, calls flow again",
        "[aisystem] anthropic: breaker opened again",
    ]
    first = Alert.objects.order_by("id").first()
    assert first is not None and first.resolved_at is not None
    assert first.resolution_state == AlertState.SENT


def test_a_closing_event_for_another_subject_resolves_nothing(
    email_rule: Rule, emit: Emit, run_jobs: Callable[[], int]
) -> None:
    email_rule("breaker.opened")
    emit("breaker.opened", **BREAKER)

    emit("breaker.closed", service="github")
    run_jobs()

    assert Alert.objects.get().resolved_at is None
    assert len(mail.outbox) == 1


def test_match_data_narrows_a_rule(email_rule: Rule, emit: Emit, run_jobs: Any) -> None:
    email_rule("bridge.down", match_data={"reason": "heartbeat missing"})

    emit("bridge.down", session="default", state="disconnected")
    emit("bridge.down", session="default", state="connected", reason="heartbeat missing")
    run_jobs()

    assert [alert.event.data.get("reason") for alert in Alert.objects.all()] == [  # type: ignore[union-attr]
        "heartbeat missing"
    ]


def test_a_disabled_rule_sends_nothing(email_rule: Rule, emit: Emit, run_jobs: Any) -> None:
    email_rule("job.failed", enabled=False)

    emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert mail.outbox == [] and not Alert.objects.exists()


def test_email_goes_to_the_superusers_unless_addresses_are_given(
    email_rule: Rule, emit: Emit, run_jobs: Any, admin_user: Any
) -> None:
    email_rule("job.failed", email_to="")

    emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert mail.outbox[0].to == [admin_user.email]


def test_an_email_rule_with_nobody_to_tell_is_skipped(
    email_rule: Rule, emit: Emit, run_jobs: Any
) -> None:
    email_rule("job.failed", email_to="")

    emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert mail.outbox == []
    assert Alert.objects.get().state == AlertState.SKIPPED


def test_a_telegram_rule_queues_the_alert_for_the_bridge(emit: Emit, run_jobs: Any) -> None:
    chat = ChatFactory(transport="telegram")
    AlertRule.objects.create(
        name="tg", event_types=["job.failed"], destination="telegram_chat", chat=chat
    )

    emit("job.failed", "Background job math.sqrt failed", job="j", func="math.sqrt", group="")
    run_jobs()
    alerts_deliver(alert_ids=[Alert.objects.get().pk], outbox_enqueue=outbox_enqueue)

    [item] = OutboxItem.objects.all()
    assert (item.chat_id, item.transport) == (chat.pk, "telegram")
    assert item.text.startswith("🔔 Background job math.sqrt failed")


def test_a_webhook_rule_delivers_the_event_to_its_endpoint(emit: Emit, run_jobs: Any) -> None:
    from aisystem.models import WebhookSubscription

    hook = WebhookSubscription.objects.create(
        name="pager", url="https://pager.example.test/", event_types=["message.answered"]
    )
    AlertRule.objects.create(
        name="wh", event_types=["job.failed"], destination="webhook", webhook=hook
    )

    event = emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.subscription_id, delivery.event_id) == (hook.pk, event.pk)
    assert queued("aisystem.tasks.webhook_deliver") == [(delivery.pk,)]


def test_an_endpoint_subscribed_to_the_type_too_gets_the_event_once(
    emit: Emit, run_jobs: Any
) -> None:
    from aisystem.models import WebhookSubscription

    hook = WebhookSubscription.objects.create(
        name="pager", url="https://pager.example.test/", event_types=["job.failed"]
    )
    AlertRule.objects.create(
        name="wh", event_types=["job.failed"], destination="webhook", webhook=hook
    )

    emit("job.failed", job="j", func="math.sqrt", group="")
    run_jobs()

    assert WebhookDelivery.objects.count() == 1
    assert Alert.objects.get().state == AlertState.SENT


def test_a_failing_mail_server_marks_the_alert_failed_and_the_job_succeeds(
    email_rule: Rule, emit: Emit, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    email_rule("job.failed")
    emit("job.failed", job="j", func="math.sqrt", group="")

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("aisystem.alerts.destinations.send_mail", refuse)
    sent = alerts_deliver(alert_ids=[Alert.objects.get().pk], outbox_enqueue=outbox_enqueue)

    alert = Alert.objects.get()
    assert sent == 0
    assert (alert.state, alert.error) == (AlertState.FAILED, "ConnectionRefusedError: smtp down")


def test_a_broken_alert_claim_never_fails_the_event(
    email_rule: Rule, monkeypatch: pytest.MonkeyPatch
) -> None:
    email_rule("job.failed")

    def explode(rows: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(dispatch, "_claim", explode)
    [event] = events_record(
        [PendingEvent(kind="job.failed", summary="x", data={"job": "j", "func": "f", "group": ""})]
    )

    assert Event.objects.filter(pk=event.pk).exists()
    assert not Alert.objects.exists()


def test_alerts_whose_job_was_lost_are_sent_by_the_sweep(email_rule: Rule, emit: Emit) -> None:
    email_rule("job.failed")
    emit("job.failed", job="j", func="math.sqrt", group="")

    early = alerts_deliver_pending(outbox_enqueue=outbox_enqueue)
    later = alerts_deliver_pending(
        outbox_enqueue=outbox_enqueue, now=timezone.now() + timedelta(minutes=2)
    )

    assert (early, later) == (0, 1)
    assert len(mail.outbox) == 1


def test_an_alert_whose_rule_was_deleted_meanwhile_is_marked_failed(
    email_rule: Rule, emit: Emit
) -> None:
    rule = email_rule("job.failed")
    emit("job.failed", job="j", func="math.sqrt", group="")
    AlertRule.objects.filter(pk=rule.pk)._raw_delete(using="default")  # another process's race

    sent = alerts_deliver(alert_ids=[Alert.objects.get().pk], outbox_enqueue=outbox_enqueue)

    assert sent == 0
    assert Alert.objects.get().error == "rule deleted" and mail.outbox == []


def test_events_no_rule_names_cost_no_statement(
    email_rule: Rule, django_assert_num_queries: Any
) -> None:
    email_rule("job.failed")
    data = {"status": "answered", "reason": "", "delivered": True, "parts": 1, "reply": "",
            "cost_usd": "0"}  # fmt: skip
    events_record([PendingEvent(kind="message.answered", summary="warm", data=data)])

    with django_assert_num_queries(2):  # the event, and who subscribes by webhook
        events_record([PendingEvent(kind="message.answered", summary="x", data=data)])
