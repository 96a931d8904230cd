"""The watchdog notices what only silence reveals: a bridge whose heartbeat stopped, a key
whose cooldown ran out. Each change is reported once, however often it runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from aisystem.alerts.watchdog import alerts_watchdog_run
from aisystem.models import Alert, AlertRule, Event, TelegramSession
from tests.factories import TelegramSessionFactory

pytestmark = pytest.mark.django_db


def bridge_events() -> list[tuple[str, str]]:
    rows = Event.objects.filter(kind__startswith="bridge.").order_by("id")
    return [(row.kind, str(row.data.get("reason", ""))) for row in rows]


def silent_bridge(minutes: float, state: str = "connected") -> TelegramSession:
    session: TelegramSession = TelegramSessionFactory(
        name="default", state=state, heartbeat_at=timezone.now() - timedelta(minutes=minutes)
    )
    return session


def test_a_bridge_silent_for_over_two_minutes_is_reported_down_once(
    ports: Any, commit: Callable[..., Any]
) -> None:
    silent_bridge(minutes=3)

    first = commit(alerts_watchdog_run, ports=ports)
    second = commit(alerts_watchdog_run, ports=ports)

    assert (first.bridge_events, second.bridge_events) == (1, 0)
    assert bridge_events() == [("bridge.down", "heartbeat missing")]
    event = Event.objects.get(kind="bridge.down")
    assert event.data["last_heartbeat_at"] is not None


def test_a_bridge_that_beat_a_minute_ago_is_fine(ports: Any, commit: Any) -> None:
    silent_bridge(minutes=1)

    commit(alerts_watchdog_run, ports=ports)

    assert bridge_events() == []


def test_a_bridge_that_stopped_on_purpose_is_not_missing(ports: Any, commit: Any) -> None:
    silent_bridge(minutes=30, state="stopped")

    commit(alerts_watchdog_run, ports=ports)

    assert bridge_events() == []


def test_beats_coming_back_report_the_bridge_up_and_resolve_the_alert(
    ports: Any, commit: Any, run_jobs: Callable[[], int], admin_user: Any
) -> None:
    AlertRule.objects.create(
        name="bridge",
        event_types=["bridge.down"],
        match_data={"reason": "heartbeat missing"},
        destination="email",
    )
    session = silent_bridge(minutes=3)
    commit(alerts_watchdog_run, ports=ports)
    run_jobs()

    TelegramSession.objects.filter(pk=session.pk).update(heartbeat_at=timezone.now())
    commit(alerts_watchdog_run, ports=ports)
    commit(alerts_watchdog_run, ports=ports)
    run_jobs()

    assert bridge_events() == [
        ("bridge.down", "heartbeat missing"),
        ("bridge.up", "heartbeat back"),
    ]
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "[aisystem] Telegram bridge default",
        "[aisystem] Resolved",
    ]
    assert Alert.objects.get().resolved_at is not None


def test_a_bridge_that_restarted_and_said_so_gets_no_second_up(
    ports: Any, commit: Any, emit: Any
) -> None:
    session = silent_bridge(minutes=3)
    commit(alerts_watchdog_run, ports=ports)

    emit("bridge.up", session=session.name, state="connected", previous_state="connecting")
    TelegramSession.objects.filter(pk=session.pk).update(heartbeat_at=timezone.now())
    commit(alerts_watchdog_run, ports=ports)

    assert [kind for kind, _ in bridge_events()] == ["bridge.down", "bridge.up"]
