"""Outgoing webhooks: the subscriptions, and the outbox of their deliveries.

A ``WebhookDelivery`` is written in the same transaction as the ``Event`` it carries (see
``aisystem.events``), so an event that committed always has its deliveries. Each delivery
keeps one ``webhook_id`` for every attempt, so a receiver can drop a repeat; each attempt is
a ``WebhookAttempt`` row, for staff.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from aisystem.fields import EncryptedTextField


class WebhookSubscription(models.Model):
    """An outgoing webhook: events of ``event_types`` are POSTed to ``url``, signed per
    Standard Webhooks with ``signing_secret`` (``whsec_…``).

    After a rotation, ``previous_secret`` signs too, until ``previous_secret_expires_at``, so a
    receiver can switch at its own pace. ``failing_since`` is the first failure since the last
    success; an endpoint failing for long is disabled (``disabled_at``), and its deliveries wait.
    """

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    signing_secret = EncryptedTextField(
        blank=True,
        help_text="Write-only. The whsec_… secret each delivery is signed with; leave empty "
        "when adding to have one generated.",
    )
    previous_secret = EncryptedTextField(blank=True, help_text="Signs too until its expiry.")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types to send; empty means every public type."
    )
    is_active = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="The first failed attempt since the last success."
    )
    disabled_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the endpoint was disabled for failing."
    )
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one subscription: pending → sending → delivered, or dead after the last
    retry.

    ``next_attempt_at`` is when a worker may next claim it: for a pending delivery the retry
    time, for a sending one the end of the claiming worker's lease. A worker killed mid-send
    leaves the row sending with the lease running out, and then it is due again: redelivered
    with the same ``webhook_id``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead (retries used up)"

    # No database constraint: a subscription removed while a transaction fans an event out to
    # it must not fail that transaction (and the message that caused the event) at commit.
    # Such a delivery is an orphan that no claim or sweep ever picks up (both join the
    # subscription); deleting a subscription deletes its deliveries through the ORM.
    subscription = models.ForeignKey(
        WebhookSubscription,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
    )
    event = models.ForeignKey(
        "aisystem.Event", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    webhook_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    attempts_before_resend = models.PositiveIntegerField(
        default=0, help_text="Attempts made before the last resend; retries count from there."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_response_excerpt = models.CharField(max_length=200, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="webhook_delivery_once_per_event"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx"),
            models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery. ``finished_at`` stays empty while it runs; an attempt whose
    worker died is closed with an "interrupted" error when the delivery is claimed again."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
