from __future__ import annotations

from django.db import models
from django.utils import timezone


class ApiIdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a REST client sent with ``POST /api/v1/messages``.

    Unique per token: the row is the claim (an INSERT on the unique constraint, so two web
    processes receiving one key at once cannot both run it). ``transport_message_id`` is the
    inbound message the key stands for (the dedup key of ``Message`` in the token's chat), so
    a repeat whose first request died finds that message and its answer. The stored response
    is set once that answer is known; until then the key is "running". Kept until
    ``expires_at`` (24 hours), then purged by the retention job.
    """

    token = models.ForeignKey(
        "aisystem.ApiToken", on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    request_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the request's canonical JSON body."
    )
    transport_message_id = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the key was last claimed to run: a repeat may take over a claim that recorded no
    # message for a while (its process died between the claim and the message).
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="api_idempotency_key_unique"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="api_idempotency_expires_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({'answered' if self.response_status else 'running'})"
