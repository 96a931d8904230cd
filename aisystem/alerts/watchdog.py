"""The minutely watchdog: what only the absence of events reveals.

* **The bridge's heartbeat.** A bridge writes ``TelegramSession.heartbeat_at`` every few
  seconds; a process killed with ``kill -9`` (or a frozen host) stops writing without saying
  so. When the last beat of a bridge that claims to be running is more than
  ``BRIDGE_SILENT_AFTER`` old, ``bridge.down`` is emitted with reason "heartbeat missing",
  once; when beats come back, ``bridge.up``, unless the bridge announced itself already.
* **Keys back.** A cooling key comes back by its clock, with no event; the watchdog notices
  and emits ``credential.available`` (``conditions.credentials_check``).
* **Sending leftovers.** Alerts whose job was lost are sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from aisystem.alerts.conditions import (
    condition_activate,
    condition_clear,
    conditions_purge,
    credentials_check,
)
from aisystem.alerts.dispatch import alerts_deliver_pending
from aisystem.alerts.ports import AlertPorts, Emit
from aisystem.models import Event, TelegramSession

BRIDGE_SILENT_AFTER = timedelta(minutes=2)
HEARTBEAT_MISSING = "heartbeat missing"
# States of a bridge that should be beating; a stopped or revoked one said goodbye.
RUNNING_STATES = (
    TelegramSession.State.CONNECTING,
    TelegramSession.State.CONNECTED,
    TelegramSession.State.DISCONNECTED,
)


@dataclass(frozen=True)
class WatchdogRun:
    """What one run did, for the job's result and the tests."""

    bridge_events: int
    credential_events: int
    alerts_sent: int


def alerts_watchdog_run(*, ports: AlertPorts, now: datetime | None = None) -> WatchdogRun:
    """One pass of every check. Idempotent: running it twice in a row emits nothing new."""
    now = now or timezone.now()
    bridge = bridge_heartbeats_watch(emit=ports.emit, now=now)
    credentials = credentials_check(emit=ports.emit, now=now)
    conditions_purge(now=now)
    sent = alerts_deliver_pending(outbox_enqueue=ports.outbox_enqueue, now=now)
    return WatchdogRun(bridge, credentials, sent)


def bridge_heartbeats_watch(*, emit: Emit, now: datetime) -> int:
    """``bridge.down`` for each enabled bridge silent for over two minutes, ``bridge.up`` for
    each that beats again; returns how many events it emitted."""
    emitted = 0
    sessions = TelegramSession.objects.filter(is_enabled=True).exclude(heartbeat_at=None)
    for session in sessions.only("pk", "name", "state", "heartbeat_at"):
        assert session.heartbeat_at is not None  # excluded above
        silent = now - session.heartbeat_at > BRIDGE_SILENT_AFTER
        key = f"bridge:{session.pk}"
        with transaction.atomic():
            if silent and session.state in RUNNING_STATES:
                if condition_activate(key=key, now=now):
                    _bridge_down(emit, session)
                    emitted += 1
            elif not silent:
                since = condition_clear(key=key, now=now)
                if since is not None and _still_unannounced(session, since):
                    _bridge_up(emit, session)
                    emitted += 1
    return emitted


def _bridge_down(emit: Emit, session: TelegramSession) -> None:
    beat = session.heartbeat_at
    emit(
        "bridge.down",
        f"Telegram bridge {session.name}: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC"
        if beat
        else f"Telegram bridge {session.name}: silent",
        level=Event.Level.ERROR,
        session=session.name,
        state=session.state,
        reason=HEARTBEAT_MISSING,
        last_heartbeat_at=beat.isoformat() if beat else None,
    )


def _bridge_up(emit: Emit, session: TelegramSession) -> None:
    emit(
        "bridge.up",
        f"Telegram bridge {session.name}: heartbeat back",
        level=Event.Level.INFO,
        session=session.name,
        state=session.state,
        reason="heartbeat back",
    )


def _still_unannounced(session: TelegramSession, since: datetime) -> bool:
    """True unless the bridge itself emitted ``bridge.up`` (a restart reconnects) since."""
    return (
        session.state == TelegramSession.State.CONNECTED
        and not Event.objects.filter(
            kind="bridge.up", data__session=session.name, created_at__gte=since
        ).exists()
    )
