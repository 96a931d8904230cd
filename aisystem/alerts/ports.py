"""The services alerts use but may not import, passed in by the caller (``aisystem.tasks``,
the admin).

``aisystem.events`` imports this package for its hook, and ``aisystem.services`` (whose
reminders record events) and ``aisystem.selectors`` (which reads through the services)
import ``aisystem.events``: importing them here would close a cycle. So the few calls out
are parameters, which also lets tests hand in what they want to observe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class Emit(Protocol):
    """``aisystem.events.system_event_emit``: record one system event."""

    def __call__(self, kind: str, summary: str, *, level: str = ..., **data: object) -> object: ...


class OutboxEnqueue(Protocol):
    """``aisystem.services.outbox.outbox_enqueue``: queue a message for a chat's sender."""

    def __call__(
        self, *, transport: str, chat_pk: int, text: str, idempotency_key: str
    ) -> tuple[int, bool]: ...


class Usage(Protocol):
    @property
    def tokens(self) -> int: ...

    @property
    def cost_usd(self) -> Decimal: ...


class UsageToday(Protocol):
    """``aisystem.selectors.identity_usage_today``: what an identity's replies cost today."""

    def __call__(self, *, identity_id: int, now: datetime | None = None) -> Usage: ...


@dataclass(frozen=True)
class AlertPorts:
    emit: Emit
    outbox_enqueue: OutboxEnqueue
    usage_today: UsageToday
