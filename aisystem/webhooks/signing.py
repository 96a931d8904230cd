"""What a delivery looks like on the wire, per Standard Webhooks (standardwebhooks.com).

The body is ``{"type", "timestamp", "data"}``, built from the stored event, so every attempt
sends the same bytes. The headers are ``webhook-id`` (the delivery's, the same on every
attempt), ``webhook-timestamp`` (this attempt's time, in seconds) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, one per valid secret, space-separated, so
that during a rotation's overlap a receiver holding either secret can verify. The signing is
the ``standardwebhooks`` library's, not ours.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Sequence
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from aisystem.event_catalog import webhook_data
from aisystem.models import Event

SECRET_PREFIX = "whsec_"  # noqa: S105  (a marker, not a secret)
SECRET_BYTES = 32


class SecretUnusable(ValueError):
    """A stored secret is not base64 after its ``whsec_`` prefix: it cannot sign."""


def secret_generate() -> str:
    """A new signing secret, ``whsec_`` and 32 random bytes in base64, as the spec shows."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_body(event: Event) -> bytes:
    """The JSON body for ``event``: the same bytes for every attempt."""
    data: dict[str, object] = webhook_data(event.kind, event.data)
    for key, value in (
        ("event_id", event.pk),
        ("transport", event.transport),
        ("chat_id", event.chat_id),
        ("message_id", event.message_id),
    ):
        if value not in ("", None):
            data.setdefault(key, value)
    envelope = {"type": event.kind, "timestamp": event.created_at.isoformat(), "data": data}
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def webhook_headers(
    webhook_id: str, timestamp: datetime, body: bytes, signing_secrets: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers; raises ``SecretUnusable`` for a malformed secret."""
    signatures = []
    for secret in signing_secrets:
        try:
            signatures.append(Webhook(secret).sign(webhook_id, timestamp, body))
        except (
            binascii.Error,
            EmptyWebhookSecretError,
            ValueError,
            TypeError,
            RuntimeError,
        ) as exc:
            raise SecretUnusable(
                "the signing secret is not a whsec_ secret; rotate it in the admin"
            ) from exc
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
