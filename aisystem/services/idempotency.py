"""``Idempotency-Key`` for the REST API: claim a key once, store its answer, purge it later.

The claim is an INSERT on the (token, key) unique constraint, so the database decides between
web processes, on SQLite and PostgreSQL alike: exactly one request runs a key. A key stands
for one inbound message (``transport_message_id``, in the request's chat): the message's own
dedup key then guarantees it is recorded once, and a repeat whose first request died reads
the answer from the message once someone (the orphan sweeper) has given it. Only a claim that
never got as far as recording its message is claimed again, after ``CLAIM_ABANDONED_AFTER``.

Keys live ``KEY_LIFETIME`` (24 hours): an expired key is free to be claimed anew, and the
retention job deletes expired rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from aisystem.models import ApiIdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
# A claim normally records its message within milliseconds; this is far beyond any wait for
# the database (SQLite's busy timeout is 20 s), so a claim this old without a message is dead.
CLAIM_ABANDONED_AFTER = timedelta(seconds=60)
PURGE_BATCH = 1000


@dataclass(frozen=True)
class KeyClaim:
    """A key as a request found it. ``created``: this request claimed it and runs it.
    ``response_status`` is None while the key's first request has not been answered."""

    pk: int
    created: bool
    request_hash: str
    transport_message_id: str
    claimed_at: datetime
    response_status: int | None = None
    response_body: dict[str, Any] | None = None


def request_hash(fields: Mapping[str, object]) -> str:
    """SHA-256 of the canonical JSON of a request's fields (sorted keys, no spaces), so that
    the same request is recognised however its client spaced or ordered the JSON."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key_claim(
    *, token_id: int, key: str, request_hash: str, transport_message_id: str, now: datetime
) -> KeyClaim:
    """The token's ``key``: claimed now for this request (``created``), or as an earlier
    request left it. An expired key is deleted and claimed anew."""
    for _attempt in range(3):  # a key that expired, or was purged, between the steps
        try:
            with transaction.atomic():
                row = ApiIdempotencyKey.objects.create(
                    token_id=token_id,
                    key=key,
                    request_hash=request_hash,
                    transport_message_id=transport_message_id,
                    created_at=now,
                    claimed_at=now,
                    expires_at=now + KEY_LIFETIME,
                )
            return _claim(row, created=True)
        except IntegrityError:
            pass
        found = ApiIdempotencyKey.objects.filter(token_id=token_id, key=key).first()
        if found is not None and found.expires_at > now:
            return _claim(found, created=False)
        if found is not None:
            ApiIdempotencyKey.objects.filter(pk=found.pk, expires_at__lte=now).delete()
    raise RuntimeError("an idempotency key could neither be claimed nor read three times")


def _claim(row: ApiIdempotencyKey, *, created: bool) -> KeyClaim:
    return KeyClaim(
        pk=row.pk,
        created=created,
        request_hash=row.request_hash,
        transport_message_id=row.transport_message_id,
        claimed_at=row.claimed_at,
        response_status=row.response_status,
        response_body=row.response_body,
    )


def idempotency_key_take_over(*, claim: KeyClaim, now: datetime) -> bool:
    """Claim again a key whose first request recorded no message within
    ``CLAIM_ABANDONED_AFTER`` (its process died in between). True for the one request that
    wins the conditional UPDATE; False while the claim is recent, or when another won."""
    if now - claim.claimed_at < CLAIM_ABANDONED_AFTER:
        return False
    return bool(
        ApiIdempotencyKey.objects.filter(
            pk=claim.pk, claimed_at=claim.claimed_at, response_status__isnull=True
        ).update(claimed_at=now)
    )


def idempotency_key_finish(*, pk: int, status: int, body: dict[str, Any]) -> None:
    """Store the key's answer; the first one stored stays (a repeat returns exactly it)."""
    ApiIdempotencyKey.objects.filter(pk=pk, response_status__isnull=True).update(
        response_status=status, response_body=body
    )


def idempotency_keys_purge(*, now: datetime, batch: int = PURGE_BATCH) -> int:
    """Delete expired keys, ``batch`` at a time (each its own short transaction); returns how
    many went."""
    total = 0
    expired = ApiIdempotencyKey.objects.filter(expires_at__lte=now)
    while True:
        keys = list(expired.order_by("pk").values_list("pk", flat=True)[:batch])
        if not keys:
            return total
        ApiIdempotencyKey.objects.filter(pk__in=keys).delete()
        total += len(keys)
