"""The relay: in the embedded default, events recorded by any process reach the browsers
connected to this one, each once and in order; with the relay off, ``events_record``
broadcasts instead (the channels-redis mode)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from aisystem.events import (
    LIVE_FEED_GROUP,
    LIVE_FEED_LAYER,
    PendingEvent,
    events_record,
    feed_message,
)
from aisystem.live import relay
from aisystem.live.layers import LocalFanoutLayer
from aisystem.live.layers import RedisChannelLayer as RedisLayer
from aisystem.live.relay import (
    LOCAL_LAYER,
    MAX_GAPS,
    EventRelay,
    RelayCursor,
    merge_feed_messages,
    relay_shutdown,
    this_process_relay,
)
from aisystem.models import Event
from tests.aisystem.test_live_feed import LAYERS, TIMEOUT, next_events, staff_socket
from tests.conftest import require_service
from tests.helpers import ROOT, subprocess_database_url
from tests.test_backends import reachable


@pytest.fixture
async def embedded(settings: Any) -> AsyncIterator[None]:
    settings.CHANNEL_LAYERS = LAYERS
    settings.LIVE_FEED = {**settings.LIVE_FEED, "SOURCE": "database", "POLL_SECONDS": 0.01}
    yield
    await relay_shutdown()


@pytest.fixture
async def layer_source(settings: Any) -> AsyncIterator[None]:
    """The relay fed by the default channel layer, as with Redis (in memory here: one
    process, so events_record's broadcast reaches this process's relay)."""
    settings.CHANNEL_LAYERS = {
        **LAYERS,
        LIVE_FEED_LAYER: {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    settings.LIVE_FEED = {**settings.LIVE_FEED, "SOURCE": "channel_layer"}
    yield
    await relay_shutdown()


async def member(alias: str = LOCAL_LAYER) -> str:
    """A channel in the live-feed group, as a socket's would be (or a relay's, on "events")."""
    layer = get_channel_layer(alias)
    channel = await layer.new_channel()
    await layer.group_add(LIVE_FEED_GROUP, channel)
    return channel


async def received_ids(channel: str, alias: str = LOCAL_LAYER) -> list[int]:
    message = await asyncio.wait_for(get_channel_layer(alias).receive(channel), TIMEOUT)
    assert message["type"] == "feed.events"
    assert [e["id"] for e in json.loads(message["text"])["events"]] == message["ids"]
    return list(message["ids"])


async def nothing_for(channel: str, seconds: float = 0.2, alias: str = LOCAL_LAYER) -> bool:
    try:
        await asyncio.wait_for(get_channel_layer(alias).receive(channel), seconds)
    except TimeoutError:
        return True
    return False


def record(*kinds: str) -> list[int]:
    rows = events_record([PendingEvent(kind=kind, summary=kind) for kind in kinds])
    return [row.pk for row in rows]


# --- The cursor: which ids to deliver --------------------------------------------------------


class TestCursor:
    def test_it_delivers_new_ids_in_order_and_each_once(self) -> None:
        cursor = RelayCursor(last_id=10, window_seconds=5)
        assert cursor.advance([11, 12, 13], now=0) == [11, 12, 13]
        assert cursor.advance([12, 13], now=0) == []
        assert cursor.advance([9, 10], now=0) == []  # at or below the start: history's
        assert cursor.last_id == 13 and cursor.missing(now=0) == []

    def test_an_id_that_commits_late_is_asked_for_and_delivered_once(self) -> None:
        cursor = RelayCursor(last_id=10, window_seconds=5)
        assert cursor.advance([11, 14], now=0) == [11, 14]
        assert cursor.missing(now=1) == [12, 13]
        assert cursor.advance([13], now=1) == [13]
        assert cursor.missing(now=2) == [12]
        assert cursor.advance([12, 15], now=2) == [12, 15]
        assert cursor.advance([12, 13], now=3) == [] and cursor.missing(now=3) == []

    def test_a_missing_id_is_given_up_on_after_the_window(self) -> None:
        cursor = RelayCursor(last_id=0, window_seconds=5)
        cursor.advance([2], now=0)
        assert cursor.missing(now=5) == [1]
        assert cursor.missing(now=5.1) == []
        assert cursor.advance([1], now=6) == []  # rolled back, or far too late: not shown twice

    def test_without_a_window_nothing_is_waited_for(self) -> None:
        cursor = RelayCursor(last_id=0, window_seconds=0)
        assert cursor.advance([1, 5], now=0) == [1, 5]
        assert cursor.missing(now=0) == []

    def test_a_jump_too_large_to_be_a_reordering_is_not_tracked(self) -> None:
        cursor = RelayCursor(last_id=0, window_seconds=5)
        cursor.advance([MAX_GAPS + 2], now=0)
        assert cursor.missing(now=0) == []


# --- The relay in this process -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_relay_sends_each_batch_once_in_id_order(embedded: None) -> None:
    channel = await member()
    relay = this_process_relay()
    await relay.subscribe()
    first = await sync_to_async(record)("message.received", "gate.allowed", "context.built")
    assert await received_ids(channel) == first
    second = await sync_to_async(record)("route.planned")
    assert await received_ids(channel) == second
    assert await nothing_for(channel)
    await relay.unsubscribe()


@pytest.mark.django_db(transaction=True)
async def test_events_stored_before_the_relay_started_are_not_sent_again(
    embedded: None,
) -> None:
    await sync_to_async(record)("message.received")  # the history's, not the relay's
    channel = await member()
    await this_process_relay().subscribe()
    assert await nothing_for(channel)


@pytest.mark.django_db(transaction=True)
async def test_an_event_committed_out_of_id_order_arrives_late_and_once(embedded: None) -> None:
    """What PostgreSQL can do with two concurrent transactions, written by hand."""
    base = await sync_to_async(record)("before")
    channel = await member()
    await this_process_relay().subscribe()
    await sync_to_async(Event.objects.create)(pk=base[0] + 2, kind="later.id", summary="x")
    assert await received_ids(channel) == [base[0] + 2]
    await sync_to_async(Event.objects.create)(pk=base[0] + 1, kind="earlier.id", summary="x")
    assert await received_ids(channel) == [base[0] + 1]
    assert await nothing_for(channel)


@pytest.mark.django_db(transaction=True)
async def test_the_relay_polls_only_while_someone_watches(embedded: None) -> None:
    relay = this_process_relay()
    await relay.subscribe()
    await relay.subscribe()
    await relay.unsubscribe()
    assert relay.running
    await relay.unsubscribe()
    assert not relay.running
    channel = await member()
    await relay.subscribe()  # a browser comes back: polling again
    ids = await sync_to_async(record)("bridge.up")
    assert await received_ids(channel) == ids


async def test_a_relay_that_fails_fails_the_sockets_waiting_for_it_instead_of_hanging() -> None:
    class Failing(EventRelay):
        async def _run(self, ready: asyncio.Future[None]) -> None:
            raise OSError("no way through")

    relay = Failing()
    with pytest.raises(RuntimeError, match="relay failed"):
        await asyncio.wait_for(relay.subscribe(), TIMEOUT)
    assert not relay.running


@pytest.mark.django_db(transaction=True)
async def test_reading_the_database_recording_does_not_broadcast(
    embedded: None, settings: Any
) -> None:
    settings.CHANNEL_LAYERS = {
        **LAYERS,
        LIVE_FEED_LAYER: {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    channel = await member(LIVE_FEED_LAYER)  # a relay of another process would be here
    await sync_to_async(record)("message.received")
    assert await nothing_for(channel, alias=LIVE_FEED_LAYER)


@pytest.mark.django_db(transaction=True)
async def test_fed_by_the_channel_layer_each_batch_is_broadcast_once_after_commit(
    layer_source: None,
) -> None:
    other_process = await member(LIVE_FEED_LAYER)  # another web process's relay
    browser = await member()
    await this_process_relay().subscribe()

    def in_a_transaction() -> tuple[list[int], bool]:
        with transaction.atomic():
            ids = record("message.received", "gate.allowed")
            return ids, async_to_sync(nothing_for)(other_process, 0.05, LIVE_FEED_LAYER)

    ids, quiet_before_commit = await sync_to_async(in_a_transaction)()
    assert quiet_before_commit
    assert await received_ids(other_process, LIVE_FEED_LAYER) == ids
    assert await received_ids(browser) == ids  # through this process's relay
    assert await nothing_for(browser)


@pytest.mark.django_db(transaction=True)
async def test_fed_by_the_channel_layer_batches_arriving_together_go_out_as_one(
    layer_source: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay, "MIN_FAN_OUT_SECONDS", 0.5)
    browser = await member()
    await this_process_relay().subscribe()
    first = await sync_to_async(record)("message.received")
    assert await received_ids(browser) == first
    second = await sync_to_async(record)("route.planned")  # within 0.5 s of the first
    third = await sync_to_async(record)("agent.ok", "message.answered")
    assert await received_ids(browser) == second + third


def test_merging_feed_messages_keeps_every_event_in_order() -> None:
    messages = [feed_message([{"id": 1}, {"id": 2}]), feed_message([{"id": 3}])]
    merged = merge_feed_messages(messages)
    assert merged["ids"] == [1, 2, 3]
    assert json.loads(merged["text"]) == {
        "type": "events",
        "events": [{"id": n} for n in (1, 2, 3)],
    }
    assert merge_feed_messages(messages[:1]) is messages[0]


# --- Across processes ------------------------------------------------------------------------

EMIT = (
    "import os; from aisystem.events import system_event_emit;"
    "print(system_event_emit('bridge.up', 'from pid %d' % os.getpid()).pk)"
)


def emit_from_another_process(env: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", EMIT],
        cwd=ROOT,
        env={**os.environ, **env, "DATABASE_URL": subprocess_database_url()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
async def test_an_event_recorded_by_another_process_reaches_a_browser_here(
    embedded: None,
) -> None:
    communicator, _ = await staff_socket()
    event_id = await asyncio.to_thread(emit_from_another_process, {"REDIS_URL": ""})
    events = await next_events(communicator)
    assert [e["id"] for e in events] == [event_id]
    assert events[0]["summary"] != f"from pid {os.getpid()}"
    await communicator.disconnect()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_with_redis_an_event_broadcast_by_another_process_reaches_a_browser_here(
    settings: Any,
) -> None:
    url = os.environ.get("TEST_REDIS_URL", "")
    require_service("Redis", bool(url) and reachable(url, 6379), "set TEST_REDIS_URL")
    # Database 14, so the pub/sub prefix is one no other process on this Redis uses (pub/sub
    # channels are server-wide: with the prefix of db 0, any process there could publish).
    url = urlunparse(urlparse(url)._replace(path="/14"))
    settings.CHANNEL_LAYERS = {
        **LAYERS,
        LIVE_FEED_LAYER: {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # The same prefix the other process derives from REDIS_URL (see settings).
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": 15}],
                "prefix": f"aisystem-db{urlparse(url).path.strip('/') or '0'}",
            },
        },
    }
    settings.LIVE_FEED = {**settings.LIVE_FEED, "SOURCE": "channel_layer"}
    communicator, _ = await staff_socket()
    event_id = await asyncio.to_thread(emit_from_another_process, {"REDIS_URL": url})
    assert [e["id"] for e in await next_events(communicator)] == [event_id]
    await communicator.disconnect()
    await relay_shutdown()


# --- The channel layers ----------------------------------------------------------------------


async def test_the_local_layer_gives_every_member_the_message_and_skips_a_full_one() -> None:
    layer = LocalFanoutLayer(capacity=1)
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add(LIVE_FEED_GROUP, channel)
    await layer.send(second, {"type": "filler"})  # second is now full
    message = feed_message([{"id": 1}])
    await layer.group_send(LIVE_FEED_GROUP, message)
    assert await layer.receive(first) is message  # shared, not copied
    assert (await layer.receive(second))["type"] == "filler"
    await layer.group_send(LIVE_FEED_GROUP, feed_message([{"id": 2}]))
    assert (await layer.receive(second))["ids"] == [2]


async def test_a_redis_receive_whose_cancellation_was_lost_stops_instead_of_polling() -> None:
    """Python 3.11's wait_for can swallow a cancellation inside redis-py; the task still
    counts it, and the layer's next poll ends the task instead of going on forever."""
    layer = RedisLayer(hosts=[{"address": "redis://127.0.0.1:1/0"}])  # never reached

    async def receive_after_a_lost_cancellation() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(1)  # the cancellation lands here and is swallowed
        await layer._brpop_with_clean(0, "asgi:channel", timeout=5)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(receive_after_a_lost_cancellation())


@pytest.mark.redis
async def test_an_idle_socket_on_the_redis_layer_outlives_the_5_second_poll(
    settings: Any,
) -> None:
    url = os.environ.get("TEST_REDIS_URL", "")
    require_service("Redis", bool(url) and reachable(url, 6379), "set TEST_REDIS_URL")
    layer = RedisLayer(hosts=[{"address": url, "socket_timeout": 15}])
    channel = await layer.new_channel()
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(6)  # redis-py's default 5 s read timeout would have failed it by now
    assert not receiving.done()
    await layer.send(channel, {"type": "still.here"})
    assert (await asyncio.wait_for(receiving, TIMEOUT))["type"] == "still.here"
    await layer.flush()
