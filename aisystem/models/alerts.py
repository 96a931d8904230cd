"""Alerts for staff: rules that map event types to a destination, and the alerts they sent.

An ``Alert`` row is written in the same transaction as the event that caused it (see
``aisystem.alerts.dispatch``), so an alert is never lost to a crash between the two. Its
``dedup_key`` is unique while its window lasts: a second process alerting for the same rule,
type and subject collides with it and counts as ``suppressed`` instead of sending twice.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

DEFAULT_DEDUP_MINUTES = 15


class AlertRule(models.Model):
    """Events of ``event_types`` (whose data has the values in ``match_data``) alert staff at
    one destination: a Telegram chat (through the bridge's outbox), e-mail addresses, or a
    webhook endpoint. At most one alert per type and subject every ``dedup_minutes``."""

    class Destination(models.TextChoices):
        TELEGRAM_CHAT = "telegram_chat", "Telegram chat"
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    name = models.CharField(max_length=100, unique=True)
    event_types = models.JSONField(default=list, help_text="The event types that alert.")
    match_data = models.JSONField(
        default=dict,
        blank=True,
        help_text='Only events whose data has these values, e.g. {"reason": "heartbeat missing"}'
        "; empty for every event of the types.",
    )
    destination = models.CharField(max_length=16, choices=Destination.choices)
    chat = models.ForeignKey(
        "aisystem.Chat",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alert_rules",
        limit_choices_to={"transport": "telegram"},
        help_text="For a Telegram destination: the chat the bridge posts to.",
    )
    email_to = models.TextField(
        blank=True,
        help_text="For e-mail: addresses, one per line or comma-separated. Empty: every "
        "superuser with an address, as they are when the alert is sent.",
    )
    webhook = models.ForeignKey(
        "aisystem.WebhookSubscription",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alert_rules",
        help_text="For a webhook destination: the endpoint the event is delivered to.",
    )
    dedup_minutes = models.PositiveIntegerField(
        default=DEFAULT_DEDUP_MINUTES,
        help_text="One alert per event type (and subject) in this many minutes.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (nobody to send to)"


class Alert(models.Model):
    """One alert a rule sent (or is sending) for an event, and its "resolved" follow-up.

    ``dedup_key`` (rule, type, subject) is set while the window runs and cleared when it has
    passed or the alert is resolved; the unique constraint lets one process claim a window.
    ``subject`` tells incidents of one type apart: the breaker's service, the bridge's session.
    """

    # No database constraint: a rule deleted while a transaction claims an alert for it must
    # not fail that transaction (and the message whose event it is) at commit. Deleting a
    # rule deletes its alerts through the ORM; such a rare orphan is marked failed when sent.
    rule = models.ForeignKey(
        AlertRule, on_delete=models.CASCADE, related_name="alerts", db_constraint=False
    )
    event = models.ForeignKey(
        "aisystem.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,  # events expire; the alert's history stays
        related_name="alerts",
    )
    kind = models.CharField(max_length=64)
    subject = models.CharField(max_length=128, blank=True)
    summary = models.CharField(max_length=255)
    dedup_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    window_ends_at = models.DateTimeField()
    suppressed = models.PositiveIntegerField(
        default=0, help_text="Events of the same type in the window that sent nothing."
    )
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.PENDING)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "aisystem.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution_state = models.CharField(max_length=12, choices=AlertState.choices, blank=True)
    resolution_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["kind", "subject", "resolved_at"], name="alert_open_idx"),
            models.Index(fields=["state", "created_at"], name="alert_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.summary[:60]}"


class AlertCondition(models.Model):
    """A condition the alerts watch outside any single event (a bridge whose heartbeat
    stopped, every API key cooling down, a budget past 80 % today). ``active_since`` flips
    with conditional updates, so its event is emitted once per change however many watchdogs
    run."""

    key = models.CharField(max_length=128, unique=True)
    active_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.key} ({'active' if self.active_since else 'clear'})"
