from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from aisystem.models import ApiCredential, CredentialStatus


def credentials_disable(*, credentials: QuerySet[ApiCredential]) -> int:
    """Take keys out of rotation until staff enable them again."""
    return credentials.update(status=CredentialStatus.DISABLED, updated_at=timezone.now())


def credentials_enable(*, credentials: QuerySet[ApiCredential]) -> int:
    """Put keys back into rotation with a clean slate (no cooldown, no failures)."""
    return credentials.update(
        status=CredentialStatus.ACTIVE,
        cooldown_until=None,
        failure_count=0,
        last_error="",
        updated_at=timezone.now(),
    )


ENV_KEY_LABEL = "ANTHROPIC_API_KEY"


def env_key_cache_keys(secret: str) -> tuple[str, str]:
    """The cache keys under which every process marks the environment's key (``settings.
    ANTHROPIC_API_KEY``, not a stored row) cooling down (the Unix time it comes back) or
    invalid: a digest of the key, never the key."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return f"claude:fallback:{digest}:cooldown", f"claude:fallback:{digest}:invalid"


def env_key_state(secret: str) -> tuple[bool, datetime | None]:
    """(invalid, cooling until) of the environment's key, as the Claude client marked it."""
    cool_key, invalid_key = env_key_cache_keys(secret)
    marks = cache.get_many([cool_key, invalid_key])
    until = marks.get(cool_key)
    return bool(marks.get(invalid_key)), (
        datetime.fromtimestamp(float(until), tz=UTC) if until is not None else None
    )
