"""The environment's Anthropic key (``settings.ANTHROPIC_API_KEY``): not a stored row, so
its cooldown and invalid mark live in the cache every process shares, under a digest of the
key (never the key). The Claude client writes them (``pipeline.claude.store``); the alerts'
"every key cooling" condition reads them (``aisystem.alerts.conditions``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from django.core.cache import cache

ENV_KEY_LABEL = "ANTHROPIC_API_KEY"


def env_key_cache_keys(secret: str) -> tuple[str, str]:
    """The cache keys of the key's cooldown (the Unix time it comes back) and invalid mark."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return f"claude:fallback:{digest}:cooldown", f"claude:fallback:{digest}:invalid"


def env_key_state(secret: str) -> tuple[bool, datetime | None]:
    """(invalid, cooling until) of the key, as the Claude client marked it."""
    cool_key, invalid_key = env_key_cache_keys(secret)
    marks = cache.get_many([cool_key, invalid_key])
    until = marks.get(cool_key)
    return bool(marks.get(invalid_key)), (
        datetime.fromtimestamp(float(until), tz=UTC) if until is not None else None
    )
