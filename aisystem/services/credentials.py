from __future__ import annotations

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
