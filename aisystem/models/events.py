from __future__ import annotations

from django.db import models
from django.utils import timezone


class Event(models.Model):
    """One step of a message's journey, or a system event, as staff see it in the live feed.

    ``data`` holds small facts (timings, counts, the model, a truncated text preview); never a
    key, a session string or a token. The pipeline writes a message's events in one batch.
    """

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    kind = models.CharField(max_length=48, help_text="For example message.received, gate.denied.")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    summary = models.CharField(max_length=255)
    transport = models.CharField(max_length=16, blank=True)
    chat = models.ForeignKey(
        "aisystem.Chat", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    message = models.ForeignKey(
        "aisystem.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at"], name="event_created_idx"),
            models.Index(fields=["kind", "created_at"], name="event_kind_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class CircuitBreaker(models.Model):
    """Shared breaker state for one external service, so every process sees the same state.

    closed: calls flow. open: calls are refused until ``open_until``. half_open: one probe
    (claimed by setting ``probe_started_at``) decides whether to close or open again.
    """

    class State(models.TextChoices):
        CLOSED = "closed", "Closed"
        OPEN = "open", "Open"
        HALF_OPEN = "half_open", "Half-open (probing)"

    service = models.CharField(max_length=32, unique=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_until = models.DateTimeField(null=True, blank=True)
    probe_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.service}: {self.get_state_display()}"
