"""A worker killed with ``kill -9`` mid-delivery loses nothing: real django-q2 clusters, a
receiver that holds the first request open, and a second cluster that sends it again with
the same ``webhook-id``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django_q.tasks import async_task

from aisystem.events import system_event_emit
from aisystem.models import WebhookAttempt, WebhookDelivery
from aisystem.webhooks.delivery import INTERRUPTED
from tests.helpers import qcluster
from tests.webhooks.conftest import Subscribe, make_due
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@contextmanager
def cluster(log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with qcluster(log, {"AISYSTEM_WEBHOOK_ALLOW_PRIVATE": "true"}) as process:
        yield process


def wait_for_status(delivery: WebhookDelivery, status: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        delivery.refresh_from_db()
        if delivery.status == status:
            return
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_a_delivery_cut_short_by_kill_9_is_sent_again_with_the_same_id(
    receiver: Receiver, subscribe: Subscribe, tmp_path: Path
) -> None:
    _, secret = subscribe("job.failed")
    receiver.hold()
    system_event_emit("job.failed", "failed", job="nightly", func="reports.build", group="")
    delivery = WebhookDelivery.objects.get()

    first_log = tmp_path / "first.log"
    with cluster(first_log) as first:
        receiver.wait_for(1, timeout=90)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sending", 1), first_log.read_text()

    receiver.release()
    make_due(delivery)  # the dead worker's lease runs out
    second_log = tmp_path / "second.log"
    with cluster(second_log):
        async_task("aisystem.tasks.webhook_deliveries_due")  # what the minutely schedule runs
        cut_short, redelivered = receiver.wait_for(2, timeout=90)
        wait_for_status(delivery, "delivered", second_log)

    assert cut_short.webhook_id == redelivered.webhook_id == delivery.webhook_id
    assert cut_short.body == redelivered.body
    assert cut_short.verified_by == redelivered.verified_by == (secret,)
    assert delivery.attempts == 2
    interrupted, delivered = WebhookAttempt.objects.filter(delivery=delivery)
    assert interrupted.error == INTERRUPTED
    assert delivered.ok and delivered.status_code == 200
