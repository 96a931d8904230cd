"""The metrics outside the pipeline: webhook attempts, open WebSockets, and the figures read at
scrape time (the job queue's depth, the bridge's heartbeat)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_q.tasks import async_task

from aisystem.asgi import application
from aisystem.chat.consumers import chat_workers_settle
from aisystem.events import system_event_emit
from aisystem.live.relay import relay_shutdown
from aisystem.models import TelegramSession, WebhookDelivery
from aisystem.services.tokens import api_token_create
from tests.metrics.scrape import Scrape, ascrape, scrape
from tests.webhooks.conftest import Subscribe, deliver_due, make_due
from tests.webhooks.receiver import Receiver

ORIGIN = b"http://127.0.0.1"


@pytest.fixture
def scraper() -> str:
    return api_token_create(name="prometheus", allow=False)[1]


def job_failed() -> None:
    system_event_emit(
        "job.failed", "Background job failed", level="error", job="j", func="f", group=""
    )


@pytest.mark.django_db(transaction=True)
def test_webhook_attempts_count_by_outcome(
    receiver: Receiver, subscribe: Subscribe, settings: Any, scraper: str
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(seconds=5),)
    subscribe("job.failed")
    receiver.respond_with(500, 500)
    before = scrape(scraper)

    job_failed()  # fails, then fails again and is dead
    outcomes = deliver_due()
    make_due_all()
    outcomes += deliver_due()
    job_failed()  # delivered at once
    outcomes += deliver_due()

    after = scrape(scraper)
    assert outcomes == ["pending", "dead", "delivered"]
    name = "aisystem_webhook_deliveries_total"
    assert after.delta(before, name, outcome="failed") == 1
    assert after.delta(before, name, outcome="dead") == 1
    assert after.delta(before, name, outcome="delivered") == 1
    assert after.delta(before, name, outcome="superseded") == 0


def make_due_all() -> None:
    for delivery in WebhookDelivery.objects.all():
        make_due(delivery)


# --- Open WebSockets ---------------------------------------------------------------------------


def session_cookie(*, superuser: bool) -> bytes:
    users = get_user_model().objects
    user = (
        users.create_superuser("root", password="a-long-Passw0rd")
        if superuser
        else users.create_user("ada", password="a-long-Passw0rd")
    )
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def open_sockets(after: Scrape, before: Scrape, consumer: str) -> float:
    return after.delta(before, "aisystem_websocket_connections", consumer=consumer)


@pytest.mark.django_db(transaction=True)
async def test_open_sockets_are_counted_while_they_are_open(settings: Any, scraper: str) -> None:
    settings.LIVE_FEED = {**settings.LIVE_FEED, "SOURCE": "database", "POLL_SECONDS": 0.01}
    headers = [(b"origin", ORIGIN), (b"host", b"127.0.0.1")]
    staff = await sync_to_async(session_cookie)(superuser=True)
    member = await sync_to_async(session_cookie)(superuser=False)
    live = WebsocketCommunicator(application, "/ws/live/", headers=[*headers, (b"cookie", staff)])
    chat = WebsocketCommunicator(application, "/ws/chat/", headers=[*headers, (b"cookie", member)])
    anonymous = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    before = await ascrape(scraper)
    try:
        assert (await live.connect(timeout=5))[0]
        assert (await chat.connect(timeout=5))[0]
        assert (await anonymous.connect(timeout=5))[0]  # accepted, then closed with 4401
        assert (await anonymous.receive_output(timeout=5))["code"] == 4401

        during = await ascrape(scraper)

        await live.disconnect()
        await chat.disconnect()
        await chat_workers_settle()
        after = await ascrape(scraper)
    finally:
        await relay_shutdown()
    assert open_sockets(during, before, "live") == 1
    assert open_sockets(during, before, "chat") == 1
    assert open_sockets(after, before, "live") == 0
    assert open_sockets(after, before, "chat") == 0


# --- Read when scraped ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_queue_depth_is_the_number_of_jobs_waiting(scraper: str) -> None:
    before = scrape(scraper)

    async_task("math.floor", 1.5)
    async_task("math.floor", 2.5)

    assert scrape(scraper).delta(before, "aisystem_queue_depth") == 2


@pytest.mark.django_db
def test_the_bridge_is_up_while_connected_with_a_fresh_heartbeat(scraper: str) -> None:
    now = timezone.now()
    connected = TelegramSession.State.CONNECTED

    def session(name: str, **fields: Any) -> None:
        TelegramSession.objects.create(name=name, mode="user", session_string="s", **fields)

    session("fresh", state=connected, heartbeat_at=now)
    session("silent", state=connected, heartbeat_at=now - timedelta(minutes=10))
    session("down", state=TelegramSession.State.DISCONNECTED, heartbeat_at=now)
    session("off", state=connected, heartbeat_at=now, is_enabled=False)

    metrics = scrape(scraper)

    assert metrics.value("aisystem_bridge_up", session="fresh") == 1
    assert metrics.value("aisystem_bridge_up", session="silent") == 0
    assert metrics.value("aisystem_bridge_up", session="down") == 0
    assert metrics.has("aisystem_bridge_up", session="down")
    assert not metrics.has("aisystem_bridge_up", session="off")


@pytest.mark.django_db
def test_no_enabled_session_means_no_bridge_sample(scraper: str) -> None:
    metrics = scrape(scraper)

    assert not any(name == "aisystem_bridge_up" for name, _ in metrics.samples)
