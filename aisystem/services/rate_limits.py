"""Fixed-window rate counters in the database, correct across processes.

Written here because ``limits`` has storage for memory, Redis, Memcached, MongoDB and etcd,
but not for a SQL database, and the embedded default must not need a server.
The count is incremented with an atomic UPDATE (or INSERT when the window is new), inside
one transaction, so two processes can never both take the last slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from aisystem.models import Chat, Identity, RateCounter


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    count: int
    limit: int
    reset_at: datetime

    @property
    def retry_after_seconds(self) -> int:
        return max(1, int((self.reset_at - timezone.now()).total_seconds() + 0.999))


def identity_counter_key(identity_id: int) -> str:
    return f"identity:{identity_id}:messages"


def chat_counter_key(chat_id: int) -> str:
    return f"chat:{chat_id}:messages"


def rate_limit_hit(
    *, key: str, limit: int, window_seconds: int, now: datetime | None = None
) -> RateLimitResult:
    """Count one event against ``key``; ``allowed`` is False once the window holds > limit."""
    now = now or timezone.now()
    epoch = int(now.timestamp())
    window_start = datetime.fromtimestamp(epoch - epoch % window_seconds, tz=UTC)
    window = RateCounter.objects.filter(key=key, window_start=window_start)
    with transaction.atomic():
        if not window.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    RateCounter.objects.create(
                        key=key,
                        window_start=window_start,
                        count=1,
                        expires_at=window_start + timedelta(seconds=2 * window_seconds),
                    )
            except IntegrityError:  # another process created the window first
                window.update(count=F("count") + 1)
        count = window.values_list("count", flat=True).get()
    return RateLimitResult(
        allowed=count <= limit,
        count=count,
        limit=limit,
        reset_at=window_start + timedelta(seconds=window_seconds),
    )


def rate_notice_first(*, key: str, until: datetime) -> bool:
    """True for the first caller per ``key`` and ``until`` (a rate window's end), False for
    every later one: a rejected sender is told once per exceeded window, even when their
    messages straddle a window boundary of the notice's own (a windowed count would split)."""
    try:
        with transaction.atomic():
            RateCounter.objects.create(
                key=key, window_start=until, count=1, expires_at=until + timedelta(seconds=60)
            )
    except IntegrityError:
        return False
    return True


def rate_limit_reset(
    *, identities: list[Identity] | None = None, chats: list[Chat] | None = None
) -> int:
    """Forget the current counts of these identities and chats. Returns counters removed."""
    keys = [identity_counter_key(i.pk) for i in identities or []]
    keys += [chat_counter_key(c.pk) for c in chats or []]
    deleted, _ = RateCounter.objects.filter(key__in=keys).delete()
    return deleted


def rate_counters_purge(*, now: datetime | None = None) -> int:
    """Delete expired windows (a scheduled job keeps the table small)."""
    deleted, _ = RateCounter.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
