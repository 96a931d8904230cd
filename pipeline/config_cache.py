"""A per-process, short-lived copy of what staff configure and every message reads: the
access rules, the rate-limit policies and the default workspace.

Reading them costs three queries per message, about a fifth of the pipeline's own time, and
they change a few times a day. A change made in this process (the admin, a command, a test)
clears the copy at once through model signals; a change made in another process is seen
within ``TTL_SECONDS``. Bulk updates bypass signals, so they too take up to ``TTL_SECONDS``.
Identity blocks are not cached: they are read with the identity on every message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
TTL_SECONDS = 2.0


class ConfigCache:
    def __init__(self, ttl_seconds: float = TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._values: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, load: Callable[[], T]) -> T:
        """The cached value of ``name``, loaded again when older than the TTL."""
        now = time.monotonic()
        with self._lock:
            entry = self._values.get(name)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]  # type: ignore[return-value]
        value = load()
        with self._lock:
            self._values[name] = (now, value)
        return value

    def clear(self, *args: Any, **kwargs: Any) -> None:
        """Forget everything (also usable as a signal receiver)."""
        with self._lock:
            self._values.clear()


CONFIG = ConfigCache()


def connect_invalidation() -> None:
    """Clear the copy whenever a rule, policy or workspace is saved or deleted here."""
    from django.db.models.signals import post_delete, post_save

    from aisystem.models import AccessRule, RateLimitPolicy, Workspace

    for model in (AccessRule, RateLimitPolicy, Workspace):
        post_save.connect(CONFIG.clear, sender=model, dispatch_uid=f"config-cache-{model.__name__}")
        post_delete.connect(
            CONFIG.clear, sender=model, dispatch_uid=f"config-cache-del-{model.__name__}"
        )
