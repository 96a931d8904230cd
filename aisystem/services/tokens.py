"""REST API tokens: random, shown once, stored as SHA-256.

SHA-256 rather than a slow password hash: the token carries 256 bits of randomness, so
guessing is hopeless anyway, and a fast hash keeps each API request cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from aisystem.models import AccessAction, ApiToken
from aisystem.services.access import access_rule_create

TOKEN_PREFIX = "ais_"  # noqa: S105  (a marker, not a secret)


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *, name: str, created_by: User | None = None, allow: bool = True
) -> tuple[ApiToken, str]:
    """Create a token; returns it with its plaintext, which is never retrievable again.

    With ``allow``, an access rule at the bottom of the order allows the token's principal.
    """
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        prefix=plaintext[:10],
        token_hash=_hash(plaintext),
        created_by=created_by,
    )
    if allow:
        access_rule_create(
            action=AccessAction.ALLOW,
            api_token=token,
            description=f"REST API token “{name}”",
        )
    return token, plaintext


def api_token_authenticate(plaintext: str) -> ApiToken | None:
    """The usable token with this value, or None (unknown, revoked, expired)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    token = ApiToken.objects.filter(token_hash=_hash(plaintext)).first()
    if token is None or not token.is_usable:
        return None
    now = timezone.now()
    # Write at most once a minute: this runs on every request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_tokens_revoke(*, tokens: list[ApiToken]) -> int:
    return ApiToken.objects.filter(pk__in=[t.pk for t in tokens], revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
