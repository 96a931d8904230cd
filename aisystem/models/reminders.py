"""Reminders and scheduled prompts, and the per-person settings they need (the time zone).

A ``Reminder`` is due at ``due_at`` (an instant, stored in UTC). A one-off is sent once; a
recurring prompt is answered by the assistant at each occurrence of ``recurrence`` (read in
the person's time zone, ``PersonSettings``) and then moved to its next occurrence. A worker
claims a due reminder by setting ``claimed_until`` (a lease) with a conditional UPDATE, so
that with several workers each occurrence is delivered once; a worker that dies lets its
lease run out, and another one delivers it.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class ReminderKind(models.TextChoices):
    ONCE = "once", "One-off reminder"
    PROMPT = "prompt", "Recurring prompt"


class ReminderStatus(models.TextChoices):
    """active → sent (a one-off, delivered) or cancelled; a recurring prompt stays active."""

    ACTIVE = "active"
    SENT = "sent"
    CANCELLED = "cancelled"


class Reminder(models.Model):
    """Something to tell (or ask the assistant for) a person in one chat at a given time."""

    identity = models.ForeignKey(
        "aisystem.Identity", on_delete=models.CASCADE, related_name="reminders"
    )
    chat = models.ForeignKey("aisystem.Chat", on_delete=models.CASCADE, related_name="reminders")
    text = models.TextField(help_text="The reminder's text, or the prompt the assistant answers.")
    kind = models.CharField(max_length=8, choices=ReminderKind.choices, default=ReminderKind.ONCE)
    due_at = models.DateTimeField(help_text="The next time it is due.")
    recurrence = models.CharField(
        max_length=64,
        blank=True,
        help_text='A recurring prompt\'s days and time, e.g. "weekday 08:00".',
    )
    status = models.CharField(
        max_length=16, choices=ReminderStatus.choices, default=ReminderStatus.ACTIVE
    )
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is delivering it until then."
    )
    sent_at = models.DateTimeField(null=True, blank=True, help_text="The last delivery.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(
                fields=["due_at", "id"], condition=Q(status="active"), name="reminder_due_idx"
            ),
            models.Index(fields=["identity", "status"], name="reminder_identity_idx"),
        ]

    def __str__(self) -> str:
        preview = self.text[:40] + ("…" if len(self.text) > 40 else "")
        return f"{self.get_kind_display()}: {preview}"


class PersonSettings(models.Model):
    """A person's preferences that are not part of who they are: their time zone (an IANA
    name; blank means the installation's ``TIME_ZONE``)."""

    identity = models.OneToOneField(
        "aisystem.Identity", on_delete=models.CASCADE, related_name="person_settings"
    )
    time_zone = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "person's settings"
        verbose_name_plural = "people's settings"

    def __str__(self) -> str:
        return f"{self.identity}: {self.time_zone or 'default zone'}"
