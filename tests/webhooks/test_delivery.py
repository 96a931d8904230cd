"""Webhook deliveries against a real receiver on loopback that verifies every signature with
the ``standardwebhooks`` library: the body, the headers, retries on the schedule, dead
deliveries, disabled endpoints, secret rotation, and claims that never send twice at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.models import OrmQ

from aisystem.event_catalog import event_validate
from aisystem.events import PendingEvent, events_record, system_event_emit
from aisystem.models import (
    Event,
    ExternalCall,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from aisystem.webhooks.delivery import (
    INTERRUPTED,
    webhook_deliveries_sweep,
    webhook_delivery_attempt,
    webhook_delivery_claim,
)
from aisystem.webhooks.services import (
    webhook_deliveries_resend,
    webhook_subscription_rotate_secret,
    webhook_subscriptions_activate,
    webhook_test_send,
)
from tests.webhooks.conftest import Subscribe, deliver_due, make_due
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


def job_failed(job: str = "nightly-report") -> Event:
    return system_event_emit(
        "job.failed",
        f"Background job {job} failed",
        level="error",
        job=job,
        func="reports.build",
        group="",
    )


def only_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.get()


# --- What is sent ----------------------------------------------------------------------------


def test_a_public_event_is_posted_signed_with_the_standard_webhooks_body(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscription, secret = subscribe("job.failed")
    event = job_failed()

    assert deliver_due() == [Status.DELIVERED]

    [request] = receiver.received
    assert request.verified_by == (secret,)
    assert request.path == "/hooks/in?source=aisystem"
    assert request.headers["content-type"] == "application/json"
    assert request.webhook_id.startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.json == {
        "type": "job.failed",
        "timestamp": event.created_at.isoformat(),
        "data": {
            "job": "nightly-report",
            "func": "reports.build",
            "group": "",
            "event_id": event.pk,
        },
    }
    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.webhook_id) == (
        Status.DELIVERED,
        1,
        request.webhook_id,
    )
    assert delivery.last_status_code == 200
    assert delivery.last_response_excerpt == '{"ok": true}'
    subscription.refresh_from_db()
    assert subscription.last_status == "HTTP 200" and subscription.last_delivery_at is not None


def test_every_attempt_is_logged_as_an_external_call_without_the_body(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscribe("job.failed")
    job_failed()
    deliver_due()

    call = ExternalCall.objects.get(service="webhook")

    assert (call.operation, call.ok, call.status_code) == ("deliver", True, 200)
    assert call.request_id == only_delivery().webhook_id
    assert "nightly-report" not in f"{call.error}{call.request_id}"


def test_live_feed_previews_of_what_people_wrote_stay_out_of_webhooks(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscribe("message.received")
    data = {"kind": "text", "chat_type": "private", "edited": False, "catch_up": False}
    events_record(
        [PendingEvent("message.received", "Text from @ann", data={**data, "text": "my plans"})],
        transport="api",
    )

    deliver_due()

    [request] = receiver.received
    assert request.json["type"] == "message.received"
    assert request.json["data"] == {**data, "event_id": Event.objects.get().pk, "transport": "api"}
    assert b"my plans" not in request.body


def test_only_subscribed_public_types_become_deliveries(subscribe: Subscribe) -> None:
    subscribe("breaker.opened", name="breakers")
    subscribe(name="everything")  # no types: every public type
    job_failed()
    system_event_emit("gate.allowed", "Allowed", level="info", rule=None)  # internal
    system_event_emit(
        "breaker.opened", "open", service="anthropic", open_seconds=30, error="overloaded"
    )

    deliveries = WebhookDelivery.objects.values_list("subscription__name", "event__kind")

    assert sorted(deliveries) == [
        ("breakers", "breaker.opened"),
        ("everything", "breaker.opened"),
        ("everything", "job.failed"),
    ]


def test_inactive_and_disabled_endpoints_get_no_new_deliveries(subscribe: Subscribe) -> None:
    inactive, _ = subscribe("job.failed", name="inactive")
    disabled, _ = subscribe("job.failed", name="disabled")
    WebhookSubscription.objects.filter(pk=inactive.pk).update(is_active=False)
    WebhookSubscription.objects.filter(pk=disabled.pk).update(disabled_at=timezone.now())

    job_failed()

    assert not WebhookDelivery.objects.exists()


def test_deliveries_are_written_with_their_event_and_rolled_back_with_it(
    subscribe: Subscribe,
) -> None:
    subscribe("job.failed")

    with pytest.raises(RuntimeError), transaction.atomic():
        job_failed()
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the change that caused the event failed")

    assert not Event.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_each_committed_delivery_gets_a_job_queued(
    subscribe: Subscribe, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe("job.failed")

    with django_capture_on_commit_callbacks(execute=True):
        job_failed()

    [job] = OrmQ.objects.all()
    assert job.task["func"] == "aisystem.tasks.webhook_deliver"
    assert job.task["args"] == (only_delivery().pk,)


# --- Retries -------------------------------------------------------------------------------


def test_a_failed_attempt_is_retried_after_the_schedules_first_delay_with_jitter(
    receiver: Receiver, subscribe: Subscribe, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(minutes=5), timedelta(hours=1))
    subscribe("job.failed")
    receiver.respond_with(503)
    job_failed()
    before = timezone.now()

    assert deliver_due() == [Status.PENDING]

    delivery = only_delivery()
    assert delivery.next_attempt_at is not None
    wait = delivery.next_attempt_at - before
    assert timedelta(minutes=4.5) <= wait <= timedelta(minutes=5.5, seconds=1)
    assert (delivery.last_status_code, delivery.last_error) == (503, "HTTP 503")
    assert delivery.last_response_excerpt == "service unavailable, try later"
    assert deliver_due() == []  # not due yet

    make_due(delivery)
    assert deliver_due() == [Status.DELIVERED]


def test_the_webhook_id_is_the_same_on_every_attempt_and_each_attempt_is_kept(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscribe("job.failed")
    receiver.respond_with(500, 502)
    job_failed()

    for _ in range(3):
        deliver_due()
        make_due(only_delivery())

    ids = {request.webhook_id for request in receiver.received}
    bodies = {request.body for request in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1 and len(bodies) == 1
    attempts = WebhookAttempt.objects.filter(delivery=only_delivery())
    assert [(a.number, a.ok, a.status_code) for a in attempts] == [
        (1, False, 500),
        (2, False, 502),
        (3, True, 200),
    ]
    assert all(a.latency_ms is not None and a.finished_at for a in attempts)


def test_after_the_last_retry_the_delivery_is_dead_and_kept(
    receiver: Receiver, subscribe: Subscribe, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(seconds=5), timedelta(seconds=5))
    subscribe("job.failed")
    receiver.respond_with(500, 500, 500, 500)
    job_failed()

    outcomes = []
    for _ in range(4):
        outcomes += deliver_due()
        make_due(only_delivery())

    assert outcomes == [Status.PENDING, Status.PENDING, Status.DEAD]
    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (Status.DEAD, 3, None)
    assert len(receiver.received) == 3


def test_a_timeout_is_a_failed_attempt(
    receiver: Receiver, subscribe: Subscribe, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    subscribe("job.failed")
    receiver.hold()
    job_failed()

    assert deliver_due() == [Status.PENDING]

    delivery = only_delivery()
    assert (delivery.last_status_code, delivery.last_error) == (None, "timed out")


def test_a_redirect_is_not_followed_but_counted_as_a_failure(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscribe("job.failed")
    receiver.location = receiver.url.replace("/hooks/in", "/elsewhere")
    receiver.respond_with(302)
    job_failed()

    assert deliver_due() == [Status.PENDING]

    assert [request.path for request in receiver.received] == ["/hooks/in?source=aisystem"]
    assert only_delivery().last_status_code == 302


def test_a_resend_sends_a_dead_delivery_again_with_the_same_id(
    receiver: Receiver, subscribe: Subscribe, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = ()
    subscribe("job.failed")
    receiver.respond_with(500)
    job_failed()
    assert deliver_due() == [Status.DEAD]

    assert webhook_deliveries_resend(delivery_ids=[only_delivery().pk]) == 1
    assert deliver_due() == [Status.DELIVERED]

    first, second = receiver.received
    assert first.webhook_id == second.webhook_id
    assert only_delivery().attempts == 2


# --- Endpoints that keep failing ------------------------------------------------------------


def test_an_endpoint_failing_for_five_days_is_disabled_with_an_event(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    failing, _ = subscribe("job.failed", name="failing")
    watcher, _ = subscribe("webhook.disabled", name="watcher")
    WebhookSubscription.objects.filter(pk=failing.pk).update(
        failing_since=timezone.now() - timedelta(days=5, seconds=1)
    )
    receiver.respond_with(503)
    job_failed()

    deliver_due()

    failing.refresh_from_db()
    assert failing.disabled_at is not None
    event = Event.objects.get(kind="webhook.disabled")
    event_validate(event.kind, event.data)
    assert event.data["subscription"] == "failing" and event.data["last_error"] == "HTTP 503"
    assert receiver.url not in str(event.data)
    # Other endpoints hear of it; the disabled one's delivery waits, no longer attempted.
    assert WebhookDelivery.objects.filter(subscription=watcher, event=event).exists()
    make_due(WebhookDelivery.objects.get(subscription=failing))
    assert webhook_deliveries_sweep() == 1  # only the watcher's
    assert deliver_due() == [Status.DELIVERED, None]


def test_a_failure_streak_shorter_than_five_days_does_not_disable(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscription, _ = subscribe("job.failed")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        failing_since=timezone.now() - timedelta(days=4, hours=23)
    )
    receiver.respond_with(503)
    job_failed()

    deliver_due()

    subscription.refresh_from_db()
    assert subscription.disabled_at is None
    assert subscription.failure_count == 1
    assert not Event.objects.filter(kind="webhook.disabled").exists()


def test_a_success_ends_the_failure_streak(receiver: Receiver, subscribe: Subscribe) -> None:
    subscription, _ = subscribe("job.failed")
    receiver.respond_with(500)
    job_failed()
    deliver_due()
    subscription.refresh_from_db()
    assert subscription.failing_since is not None

    make_due(only_delivery())
    deliver_due()

    subscription.refresh_from_db()
    assert (subscription.failing_since, subscription.failure_count) == (None, 0)


def test_reactivating_a_disabled_endpoint_sends_what_waited(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscription, _ = subscribe("job.failed")
    job_failed()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(disabled_at=timezone.now())
    assert deliver_due() == [None]

    webhook_subscriptions_activate(subscription_ids=[subscription.pk])

    assert deliver_due() == [Status.DELIVERED]


# --- Secrets ------------------------------------------------------------------------------


def test_during_a_rotation_both_secrets_sign_and_either_verifies(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscription, old = subscribe("job.failed")
    new = webhook_subscription_rotate_secret(subscription_id=subscription.pk)
    receiver.secrets.append(new)
    job_failed()

    deliver_due()

    [request] = receiver.received
    assert new.startswith("whsec_") and new != old
    assert set(request.verified_by) == {old, new}
    assert len(request.headers["webhook-signature"].split(" ")) == 2


def test_after_the_overlap_only_the_new_secret_signs(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscription, old = subscribe("job.failed")
    new = webhook_subscription_rotate_secret(
        subscription_id=subscription.pk, now=timezone.now() - timedelta(hours=25)
    )
    receiver.secrets.append(new)
    job_failed()

    deliver_due()

    [request] = receiver.received
    assert request.verified_by == (new,)
    assert old in receiver.secrets
    assert " " not in request.headers["webhook-signature"]


def test_an_unusable_stored_secret_is_a_clear_failure_not_a_crash(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscription, _ = subscribe("job.failed")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(signing_secret="")
    job_failed()

    assert deliver_due() == [Status.PENDING]

    assert "no signing secret" in only_delivery().last_error
    assert receiver.received == []


def test_a_test_event_goes_to_that_endpoint_only(receiver: Receiver, subscribe: Subscribe) -> None:
    chosen, secret = subscribe("job.failed", name="chosen")
    subscribe(name="other")

    webhook_test_send(subscription_id=chosen.pk)
    deliver_due()

    [request] = receiver.received
    assert request.json["type"] == "webhook.test"
    assert request.json["data"]["subscription"] == "chosen"
    assert request.verified_by == (secret,)


# --- Claims, leases and crashed workers ---------------------------------------------------


def test_two_workers_claiming_the_same_delivery_send_it_once(subscribe: Subscribe) -> None:
    subscribe("job.failed")
    job_failed()
    delivery = only_delivery()
    now = timezone.now()

    first = webhook_delivery_claim(delivery_id=delivery.pk, now=now)
    second = webhook_delivery_claim(delivery_id=delivery.pk, now=now)

    assert first is not None and first.number == 1
    assert second is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_in_threads_send_each_delivery_once(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscribe("job.failed")
    for n in range(3):
        job_failed(f"job-{n}")
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    start = threading.Barrier(4)

    def worker() -> None:
        from django.db import connection

        start.wait()
        try:
            for pk in ids:
                webhook_delivery_attempt(delivery_id=pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.json["data"]["job"] for r in receiver.received) == ["job-0", "job-1", "job-2"]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Status.DELIVERED}


def test_a_delivery_whose_worker_died_is_sent_again_with_the_same_id(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    subscribe("job.failed")
    job_failed()
    delivery = only_delivery()
    # A worker claims it and dies before the POST is answered: nothing is recorded.
    assert webhook_delivery_claim(delivery_id=delivery.pk, now=timezone.now()) is not None
    assert deliver_due() == []  # its lease still runs

    make_due(delivery)  # the lease ran out
    assert deliver_due() == [Status.DELIVERED]

    delivery.refresh_from_db()
    assert [request.webhook_id for request in receiver.received] == [delivery.webhook_id]
    assert delivery.attempts == 2
    first, second = WebhookAttempt.objects.filter(delivery=delivery)
    assert (first.error, first.finished_at is not None) == (INTERRUPTED, True)
    assert second.ok


def test_a_worker_that_outlived_its_lease_does_not_overwrite_the_outcome(
    receiver: Receiver, subscribe: Subscribe
) -> None:
    from aisystem.webhooks.delivery import webhook_delivery_record
    from aisystem.webhooks.http import HttpResult

    subscribe("job.failed")
    job_failed()
    delivery = only_delivery()
    slow = webhook_delivery_claim(delivery_id=delivery.pk, now=timezone.now())
    assert slow is not None
    make_due(delivery)
    assert deliver_due() == [Status.DELIVERED]

    late = webhook_delivery_record(
        claim=slow, result=HttpResult(500, 10, error=""), now=timezone.now()
    )

    assert late == "superseded"
    assert only_delivery().status == Status.DELIVERED


def test_the_sweep_queues_a_job_for_each_due_delivery(subscribe: Subscribe) -> None:
    subscribe("job.failed")
    job_failed("a")
    job_failed("b")
    later = WebhookDelivery.objects.order_by("pk").last()
    assert later is not None
    WebhookDelivery.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    assert webhook_deliveries_sweep() == 1

    [job] = OrmQ.objects.all()
    assert job.task["func"] == "aisystem.tasks.webhook_deliver"


@pytest.mark.django_db(transaction=True)
def test_a_subscription_removed_during_a_fan_out_does_not_fail_the_events_transaction(
    subscribe: Subscribe,
) -> None:
    subscription, _ = subscribe("job.failed")

    with transaction.atomic():
        job_failed()
        # Another process's "webhooks remove", landing between the fan-out and the commit.
        WebhookSubscription.objects.filter(pk=subscription.pk)._raw_delete("default")

    orphan = only_delivery()
    assert Event.objects.filter(kind="job.failed").exists()
    assert webhook_deliveries_sweep() == 0
    assert webhook_delivery_claim(delivery_id=orphan.pk, now=timezone.now()) is None
