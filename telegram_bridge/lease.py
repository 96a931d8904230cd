"""Exactly one bridge per Telegram account: a lease on the account's ``TelegramSession`` row.

Two processes on one session would both receive its updates, race to answer them, and can make
Telegram revoke the authorization key for being used twice at once. So a bridge first claims
the row (``runner`` = host:pid:nonce) with one conditional UPDATE, which the database decides
whatever the number of contenders; every heartbeat renews it only where ``runner`` is still
this bridge (``heartbeat_record(runner=...)``), and a stop releases it. A holder that stops
beating (killed, its machine gone) is taken over once its heartbeat is ``stale_after`` old:
three beats, by default 30 s.

A database row rather than a file lock or a Redis lock: bridges may run on different machines,
and the database is the one thing every deployment mode shares.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.db.models import Q
from django.utils import timezone

from aisystem.models import TelegramSession

logger = logging.getLogger(__name__)

STALE_BEATS = 3


class LeaseLost(Exception):
    """Another bridge took this account over (this one's heartbeat had gone stale)."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a session, when a claim fails."""

    runner: str
    heartbeat_at: datetime | None

    def describe(self, now: datetime) -> str:
        if self.heartbeat_at is None:
            return self.runner
        age = max((now - self.heartbeat_at).total_seconds(), 0.0)
        return f"{self.runner}, last heartbeat {age:.0f} s ago"


def runner_name() -> str:
    """This process, as the admin and the other bridges see it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def lease_claim(
    session_id: int, runner: str, *, now: datetime, stale_after: timedelta
) -> LeaseHolder | None:
    """Take session ``session_id`` for ``runner``: None when it is ours now, else its holder.
    Free, already ours, or held by a bridge whose heartbeat is older than ``stale_after``
    all count as free."""
    claimable = (
        Q(runner="")
        | Q(runner=runner)
        | Q(heartbeat_at__isnull=True)
        | Q(heartbeat_at__lt=now - stale_after)
    )
    taken = TelegramSession.objects.filter(claimable, pk=session_id).update(
        runner=runner, heartbeat_at=now, updated_at=now
    )
    if taken:
        return None
    holder = TelegramSession.objects.filter(pk=session_id).values("runner", "heartbeat_at").get()
    return LeaseHolder(runner=holder["runner"], heartbeat_at=holder["heartbeat_at"])


def lease_release(session_id: int, runner: str) -> bool:
    """Give the session up, if ``runner`` still holds it; True if it did."""
    released = TelegramSession.objects.filter(pk=session_id, runner=runner).update(
        runner="", updated_at=timezone.now()
    )
    return bool(released)


class AccountLease:
    """A bridge's hold on its account: ``claim`` at the start, ``lost`` once a heartbeat found
    another holder, ``release`` at the end (only if still held)."""

    def __init__(self, session: TelegramSession, *, heartbeat_seconds: float) -> None:
        self.session = session
        self.runner = runner_name()
        self.stale_after = timedelta(seconds=STALE_BEATS * heartbeat_seconds)
        self.lost = False

    async def claim(self) -> bool:
        """Take the account; False (logged, naming the holder) if another bridge has it."""
        now = timezone.now()
        holder = await sync_to_async(lease_claim)(
            self.session.pk, self.runner, now=now, stale_after=self.stale_after
        )
        if holder is not None:
            logger.error(
                "Telegram session '%s' is run by another bridge (%s): exactly one bridge may "
                "run per account. Stop that one first.",
                self.session.name,
                holder.describe(now),
            )
        return holder is None

    def lose(self, error: LeaseLost) -> None:
        if not self.lost:
            logger.error("%s: this bridge stops (exactly one may run per account)", error)
        self.lost = True

    async def release(self) -> None:
        await sync_to_async(lease_release)(self.session.pk, self.runner)
