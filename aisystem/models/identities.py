from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from aisystem.models.choices import ChatType, ReplyMode, Role, Transport


class Identity(models.Model):
    """A person as one transport knows them, optionally linked to a Django user."""

    transport = models.CharField(max_length=16, choices=Transport.choices)
    external_id = models.CharField(
        max_length=128, help_text="The transport's stable id for this person."
    )
    username = models.CharField(
        max_length=150, blank=True, help_text="Without the @; matched case-insensitively."
    )
    display_name = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="identities",
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.GUEST)
    is_blocked = models.BooleanField(
        default=False, help_text="Blocked identities are ignored silently."
    )
    blocked_reason = models.CharField(max_length=255, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["transport", "external_id"], name="identity_unique_per_transport"
            ),
        ]
        indexes = [models.Index(fields=["username"], name="identity_username_idx")]

    def __str__(self) -> str:
        name = f"@{self.username}" if self.username else self.display_name or self.external_id
        return f"{name} ({self.get_transport_display()})"


class Chat(models.Model):
    """A conversation place on a transport: a Telegram chat, a browser session, an API chat."""

    transport = models.CharField(max_length=16, choices=Transport.choices)
    external_id = models.CharField(max_length=128)
    chat_type = models.CharField(max_length=16, choices=ChatType.choices)
    title = models.CharField(max_length=255, blank=True)
    workspace = models.ForeignKey(
        "aisystem.Workspace",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bound_chats",
        help_text="Staff binding: this chat always uses this workspace.",
    )
    selected_workspace = models.ForeignKey(
        "aisystem.Workspace",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="selecting_chats",
        help_text="Chosen in the chat with /workspace; the binding wins over it.",
    )
    reply_mode = models.CharField(
        max_length=16, choices=ReplyMode.choices, default=ReplyMode.MENTION
    )
    status_reactions = models.BooleanField(
        default=True, help_text="Show 👀 → 🤔 → 👍/❌ reactions on incoming messages."
    )
    channel_enabled = models.BooleanField(
        default=False,
        help_text="Telegram broadcast channels only: answer posts here (as the reply mode says). "
        "Off by default, since an answer in a channel is public to every subscriber.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["transport", "external_id"], name="chat_unique_per_transport"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title or self.external_id} ({self.get_transport_display()})"
