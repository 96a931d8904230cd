"""The bridge's heartbeat: its state, account, last update, lag and in-flight count.

``heartbeat_record`` writes them on the ``TelegramSession`` row, which the admin and
``/api/v1/health`` read (a stale ``heartbeat_at`` means the bridge is gone). It emits a system
event only when the state changes, so the live feed shows transitions, not a tick every ten
seconds. ``Heartbeat.run`` records a snapshot of the running bridge periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from aisystem.events import system_event_emit
from aisystem.models import Event, TelegramSession
from telegram_bridge.config import BridgeConfig
from telegram_bridge.lease import LeaseLost

logger = logging.getLogger(__name__)

State = TelegramSession.State

# kind, level and wording of the event a change *to* the state emits.
_STATE_EVENTS: dict[str, tuple[str, str, str]] = {
    State.CONNECTING: ("bridge.connecting", Event.Level.INFO, "connecting"),
    State.CONNECTED: ("bridge.up", Event.Level.INFO, "connected"),
    State.DISCONNECTED: ("bridge.down", Event.Level.WARNING, "lost its connection"),
    State.REVOKED: (
        "bridge.revoked",
        Event.Level.ERROR,
        "session revoked or invalid; sign in again with telegram_login",
    ),
    State.STOPPED: ("bridge.stopped", Event.Level.INFO, "stopped"),
}


@dataclass(frozen=True)
class HeartbeatSnapshot:
    """The bridge's condition at one moment, as ``Heartbeat.run`` records it."""

    state: str
    account_user_id: int | None = None
    account_username: str = ""
    last_update_at: datetime | None = None
    lag_seconds: float | None = None
    in_flight: int = 0


def heartbeat_record(
    *,
    session_id: int,
    state: str,
    account_user_id: int | None = None,
    account_username: str = "",
    last_update_at: datetime | None = None,
    lag_seconds: float | None = None,
    in_flight: int = 0,
    runner: str = "",
    now: datetime,
) -> bool:
    """Store the heartbeat on session ``session_id``; True if the state changed.

    ``heartbeat_at`` becomes ``now``; ``state``, ``lag_seconds`` and ``in_flight`` are
    overwritten (``lag_seconds=None``: unknown now). The account fields and
    ``last_update_at`` keep their stored value when not given (None / ""), so a beat while
    connecting does not erase who the account is or when it last heard from Telegram.
    A state change emits one system event (``bridge.up`` when connected, ``bridge.down`` when
    the connection is lost, else ``bridge.<state>``; ``bridge.revoked`` at error
    level), stored in the same transaction. With ``runner``, the beat also renews that
    bridge's lease (``telegram_bridge.lease``) and raises ``LeaseLost``, writing nothing, if
    another bridge holds the session now. Raises ValueError for an unknown state and
    ``TelegramSession.DoesNotExist`` for an unknown session.
    """
    if state not in State.values:
        raise ValueError(f"unknown bridge state {state!r}")
    fields: dict[str, object] = {
        "state": state,
        "heartbeat_at": now,
        "lag_seconds": lag_seconds,
        "in_flight": max(in_flight, 0),
        "updated_at": now,
    }
    if account_user_id is not None:
        fields["account_user_id"] = account_user_id
    if account_username:
        fields["account_username"] = account_username[:64]
    if last_update_at is not None:
        fields["last_update_at"] = last_update_at
    with transaction.atomic():
        session = (
            TelegramSession.objects.select_for_update()
            .only("pk", "name", "state", "account_username")
            .get(pk=session_id)
        )
        previous = session.state
        rows = TelegramSession.objects.filter(pk=session_id)
        if runner:
            rows = rows.filter(runner=runner)
        if not rows.update(**fields):
            raise LeaseLost(f"another bridge holds Telegram session {session.name!r} now")
        if previous == state:
            return False
        _emit_state_change(session, previous, state, account_username)
    return True


def _emit_state_change(
    session: TelegramSession, previous: str, state: str, account_username: str
) -> None:
    kind, level, wording = _STATE_EVENTS[state]
    username = account_username or session.account_username
    who = f"@{username}" if username else session.name
    system_event_emit(
        kind,
        f"Telegram bridge {who}: {wording}",
        level=level,
        session=session.name,
        previous_state=previous,
        state=state,
    )


class Heartbeat:
    """Records the running bridge's snapshot on its ``TelegramSession`` every ``interval``.

    The bridge records the final state itself (``await heartbeat.record(...)`` with
    ``stopped`` or ``revoked``) after ``run`` returns: only it knows why it stopped.
    """

    def __init__(
        self,
        session_id: int,
        *,
        runner: str = "",
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.session_id = session_id
        self.runner = runner
        self.clock = clock

    async def record(self, snapshot: HeartbeatSnapshot) -> bool:
        """Store ``snapshot`` now; True if the state changed (see ``heartbeat_record``)."""
        return await sync_to_async(heartbeat_record)(
            session_id=self.session_id,
            state=snapshot.state,
            account_user_id=snapshot.account_user_id,
            account_username=snapshot.account_username,
            last_update_at=snapshot.last_update_at,
            lag_seconds=snapshot.lag_seconds,
            in_flight=snapshot.in_flight,
            runner=self.runner,
            now=self.clock(),
        )

    async def run(
        self,
        stop: asyncio.Event,
        interval: float | None = None,
        *,
        snapshot: Callable[[], HeartbeatSnapshot],
    ) -> None:
        """Record ``snapshot()`` at once and then every ``interval`` seconds until ``stop``
        is set (default ``BridgeConfig.heartbeat_seconds``: HEARTBEAT_SECONDS, 10). A failed
        beat (database busy, say) is logged and the next one tried: the heartbeat never
        takes the bridge down, except by raising ``LeaseLost`` when another bridge took the
        account over."""
        if interval is None:
            interval = float(BridgeConfig.from_settings().heartbeat_seconds)
        while not stop.is_set():
            try:
                await self.record(snapshot())
            except LeaseLost:
                raise
            except Exception:
                logger.exception("heartbeat for session %s failed", self.session_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
