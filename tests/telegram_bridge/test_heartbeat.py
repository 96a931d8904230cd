"""The heartbeat: fields stored on the session, one system event per state change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from aisystem.models import Event, TelegramSession
from telegram_bridge.heartbeat import Heartbeat, HeartbeatSnapshot, heartbeat_record
from tests.factories import TelegramSessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def _close_sync_thread_connection() -> AsyncIterator[None]:
    """Close the connection sync_to_async's thread opened, so PostgreSQL can drop the test
    database at the end of the run."""
    yield
    await sync_to_async(close_connection)()


def close_connection() -> None:
    connection.close()  # resolved in the calling thread: that thread's own connection


def bridge_events() -> list[tuple[str, str]]:
    return [
        (kind, level)
        for kind, level in Event.objects.filter(kind__startswith="bridge.")
        .order_by("id")
        .values_list("kind", "level")
    ]


def test_it_stores_the_bridges_condition() -> None:
    session = TelegramSessionFactory()
    last_update = T0 - timedelta(seconds=3)

    heartbeat_record(
        session_id=session.pk,
        state="connected",
        account_user_id=4242,
        account_username="helper_bot",
        last_update_at=last_update,
        lag_seconds=0.25,
        in_flight=3,
        now=T0,
    )

    session.refresh_from_db()
    assert (session.state, session.heartbeat_at, session.last_update_at) == (
        "connected",
        T0,
        last_update,
    )
    assert (session.account_user_id, session.account_username) == (4242, "helper_bot")
    assert (session.lag_seconds, session.in_flight) == (0.25, 3)


def test_a_state_change_emits_one_event_and_a_steady_state_none() -> None:
    session = TelegramSessionFactory()

    changes = [
        heartbeat_record(session_id=session.pk, state=state, now=T0 + timedelta(seconds=n))
        for n, state in enumerate(["connecting", "connected", "connected", "connected"])
    ]

    assert changes == [True, True, False, False]
    assert bridge_events() == [("bridge.connecting", "info"), ("bridge.up", "info")]


def test_each_transition_has_its_own_event_and_revoked_is_an_error() -> None:
    session = TelegramSessionFactory(state="connected", account_username="helper_bot")

    for state in ["disconnected", "connected", "revoked", "stopped"]:
        heartbeat_record(session_id=session.pk, state=state, now=T0)

    assert bridge_events() == [
        ("bridge.down", "warning"),
        ("bridge.up", "info"),
        ("bridge.revoked", "error"),
        ("bridge.stopped", "info"),
    ]
    revoked = Event.objects.get(kind="bridge.revoked")
    assert "@helper_bot" in revoked.summary
    assert "telegram_login" in revoked.summary
    assert revoked.data == {
        "session": session.name,
        "previous_state": "connected",
        "state": "revoked",
    }
    assert session.session_string not in str(revoked.data) + revoked.summary


def test_a_beat_without_account_details_keeps_the_stored_ones() -> None:
    session = TelegramSessionFactory(account_user_id=7, account_username="helper_bot")
    heartbeat_record(
        session_id=session.pk, state="connected", last_update_at=T0, lag_seconds=1.5, now=T0
    )

    heartbeat_record(session_id=session.pk, state="disconnected", now=T0 + timedelta(seconds=10))

    session.refresh_from_db()
    assert (session.account_user_id, session.account_username) == (7, "helper_bot")
    assert session.last_update_at == T0
    assert session.lag_seconds is None
    assert session.heartbeat_at == T0 + timedelta(seconds=10)


def test_an_unknown_state_is_refused() -> None:
    session = TelegramSessionFactory()
    with pytest.raises(ValueError, match="unknown bridge state"):
        heartbeat_record(session_id=session.pk, state="sleeping", now=T0)
    assert bridge_events() == []


async def test_run_beats_until_stopped_with_the_current_snapshot() -> None:
    session = await sync_to_async(TelegramSessionFactory)()
    stop = asyncio.Event()
    beats = 0

    def snapshot() -> HeartbeatSnapshot:
        nonlocal beats
        beats += 1
        if beats == 3:
            stop.set()
        return HeartbeatSnapshot(state="connected", in_flight=beats)

    await asyncio.wait_for(Heartbeat(session.pk).run(stop, 0.01, snapshot=snapshot), 5)

    await sync_to_async(session.refresh_from_db)()
    assert (beats, session.state, session.in_flight) == (3, "connected", 3)
    assert await sync_to_async(bridge_events)() == [("bridge.up", "info")]


async def test_a_failing_beat_does_not_stop_the_heartbeat() -> None:
    stop = asyncio.Event()
    beats = 0

    def snapshot() -> HeartbeatSnapshot:
        nonlocal beats
        beats += 1
        if beats == 2:
            stop.set()
        return HeartbeatSnapshot(state="connected")

    missing_session = 999_999
    await asyncio.wait_for(Heartbeat(missing_session).run(stop, 0.01, snapshot=snapshot), 5)

    assert beats == 2
    assert not await sync_to_async(TelegramSession.objects.filter(pk=missing_session).exists)()


async def test_record_stores_a_final_state() -> None:
    session = await sync_to_async(TelegramSessionFactory)(state="connected")
    heartbeat = Heartbeat(session.pk, clock=lambda: T0)

    assert await heartbeat.record(HeartbeatSnapshot(state="stopped")) is True

    await sync_to_async(session.refresh_from_db)()
    assert (session.state, session.heartbeat_at, session.in_flight) == ("stopped", T0, 0)


async def test_run_beats_at_the_configured_interval_by_default(settings: Any) -> None:
    settings.TELEGRAM_BRIDGE = {**settings.TELEGRAM_BRIDGE, "HEARTBEAT_SECONDS": 3600}
    session = await sync_to_async(TelegramSessionFactory)()
    stop = asyncio.Event()
    beats = 0

    def snapshot() -> HeartbeatSnapshot:
        nonlocal beats
        beats += 1
        return HeartbeatSnapshot(state="connected")

    runner = asyncio.create_task(Heartbeat(session.pk).run(stop, snapshot=snapshot))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(runner, 5)

    assert beats == 1  # the first beat at once, the next one an hour later
