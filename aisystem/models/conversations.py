from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from aisystem.models.choices import Direction, MessageKind, MessageStatus, Transport


def _default_model() -> str:
    return str(settings.DEFAULT_MODEL)


class Workspace(models.Model):
    """A persona: system prompt, model and history budget. Exactly one may be the default."""

    slug = models.SlugField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Lowercase letters, digits, dashes.")],
        help_text="What users type after /workspace.",
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    system_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=100, default=_default_model)
    max_tokens = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(1)])
    history_max_messages = models.PositiveIntegerField(default=20)
    history_max_tokens = models.PositiveIntegerField(default=8000)
    message_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Delete this workspace's finished messages older than this many days "
        "(a daily job); empty keeps them.",
    )
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="workspace_one_default"
            ),
            models.CheckConstraint(condition=Q(max_tokens__gte=1), name="workspace_max_tokens"),
        ]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    """The history a chat shares with one workspace until it is ended (/new, staff, expiry)."""

    chat = models.ForeignKey(
        "aisystem.Chat", on_delete=models.CASCADE, related_name="conversations"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="conversations")
    started_by = models.ForeignKey(
        "aisystem.Identity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="started_conversations",
    )
    title = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chat", "workspace"],
                condition=Q(ended_at__isnull=True),
                name="conversation_one_active_per_chat_workspace",
            ),
        ]
        indexes = [models.Index(fields=["chat", "-started_at"], name="conversation_chat_idx")]

    def __str__(self) -> str:
        return self.title or f"{self.chat} · {self.workspace} · {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class Message(models.Model):
    """One message in or out.

    (transport, chat, transport_message_id, direction) is the dedup key.
    """

    transport = models.CharField(max_length=16, choices=Transport.choices)
    chat = models.ForeignKey("aisystem.Chat", on_delete=models.CASCADE, related_name="messages")
    transport_message_id = models.CharField(max_length=64)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    identity = models.ForeignKey(
        "aisystem.Identity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.TEXT)
    is_edited = models.BooleanField(default=False)
    is_forwarded = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.RECEIVED
    )
    status_reason = models.CharField(
        max_length=64, blank=True, help_text="Why it was rejected, deferred or failed."
    )
    text = models.TextField(blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the transport says it was sent."
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Who is answering it now, and until when: a process answering a message away from its
    # sender (a background answer) renews the lease while it works, so that a lease left to
    # expire marks an answer whose process died, to be taken over and answered once.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["transport", "chat", "transport_message_id", "direction"],
                name="message_dedup_key",
            ),
        ]
        indexes = [
            models.Index(fields=["chat", "created_at"], name="message_chat_created_idx"),
            models.Index(fields=["conversation", "created_at"], name="message_conv_created_idx"),
            models.Index(fields=["identity", "created_at"], name="message_identity_created_idx"),
            models.Index(fields=["status", "created_at"], name="message_status_created_idx"),
            models.Index(fields=["created_at"], name="message_created_idx"),
        ]

    def __str__(self) -> str:
        arrow = "→" if self.direction == Direction.INBOUND else "←"
        preview = self.text[:60] + ("…" if len(self.text) > 60 else "")
        return f"{arrow} {preview or self.get_kind_display()}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class HeldAttachment(models.Model):
    """An attachment kept for an answer given away from its sender (a background answer of a
    large PDF), so that any worker on any host can read it. Deleted once the message is
    answered, cancelled or expired; the bytes are no more secret than the message's text."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="held_attachments")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16)
    mime_type = models.CharField(max_length=100, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "position"], name="held_attachment_order"),
        ]

    def __str__(self) -> str:
        return self.file_name or f"{self.kind} #{self.position}"
