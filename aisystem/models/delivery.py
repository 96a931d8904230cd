from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from aisystem.fields import EncryptedTextField
from aisystem.models.choices import Transport


class OutboxItem(models.Model):
    """A reply waiting to be delivered by its transport's sender, in order per chat.

    ``idempotency_key`` makes enqueueing the same reply twice a no-op.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    transport = models.CharField(max_length=16, choices=Transport.choices)
    chat = models.ForeignKey("aisystem.Chat", on_delete=models.CASCADE, related_name="outbox")
    source_message = models.ForeignKey(
        "aisystem.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbox_items",
    )
    idempotency_key = models.CharField(max_length=128, unique=True)
    text = models.TextField()
    reply_to_transport_message_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    sent_transport_message_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outbox item"
        indexes = [
            models.Index(
                fields=["transport", "available_at", "id"],
                condition=Q(status="pending"),
                name="outbox_pending_idx",
            ),
            models.Index(fields=["chat", "id"], name="outbox_chat_idx"),
        ]

    def __str__(self) -> str:
        return f"to {self.chat}: {self.text[:40]}"


class ReplyDelivery(models.Model):
    """What of one reply its transport has put on screen, written while it goes out, so that a
    stop, a crash or a later retry (the outbox) finishes that reply instead of sending it again
    (see ``telegram_bridge.journal``).

    ``key`` names the reply: ``reply:<inbound message pk>`` for the pipeline's answer (the
    idempotency key its outbox item gets if it is rescheduled), else the outbox item's own
    idempotency key. ``parts`` are the messages sent for it, in order, as
    ``{"random_id": int, "message_id": str}``: the random id (Telegram drops a second send
    with the same one) is written before the send, the message id right after it, so a part
    without one may or may not have reached Telegram. ``complete``: the reply's final
    ``text`` is all on screen.
    """

    key = models.CharField(max_length=128, unique=True)
    transport = models.CharField(max_length=16, choices=Transport.choices)
    chat_external_id = models.CharField(max_length=128)
    parts = models.JSONField(default=list, blank=True)
    complete = models.BooleanField(default=False)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "reply delivery"
        verbose_name_plural = "reply deliveries"
        indexes = [models.Index(fields=["updated_at"], name="reply_delivery_updated_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({len(self.parts)} message(s){', complete' if self.complete else ''})"


class TelegramSession(models.Model):
    """A signed-in Telegram account and its bridge's heartbeat. One bridge runs per session."""

    class Mode(models.TextChoices):
        USER = "user", "User account"
        BOT = "bot", "Bot"

    class State(models.TextChoices):
        STOPPED = "stopped", "Stopped"
        CONNECTING = "connecting", "Connecting"
        CONNECTED = "connected", "Connected"
        DISCONNECTED = "disconnected", "Disconnected"
        REVOKED = "revoked", "Session revoked"

    name = models.CharField(max_length=64, unique=True, default="default")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    api_id = models.PositiveIntegerField(null=True, blank=True)
    api_hash = EncryptedTextField(blank=True, help_text="Write-only.")
    session_string = EncryptedTextField(help_text="Write-only. Written by telegram_login.")
    is_enabled = models.BooleanField(default=True)
    account_user_id = models.BigIntegerField(null=True, blank=True)
    account_username = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_update_at = models.DateTimeField(null=True, blank=True)
    lag_seconds = models.FloatField(null=True, blank=True)
    in_flight = models.PositiveIntegerField(default=0)
    runner = models.CharField(
        max_length=128,
        blank=True,
        help_text="The bridge process holding this account (host:pid:nonce); empty when none. "
        "A holder whose heartbeat is older than three beats is taken over.",
    )
    update_state = models.JSONField(
        default=list,
        blank=True,
        help_text="Telegram's update sequence (pts/qts/date/seq) where the bridge stopped, "
        "so a restart fetches what arrived meanwhile.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        who = f"@{self.account_username}" if self.account_username else self.name
        return f"{who} ({self.get_mode_display()})"


class TelegramPeer(models.Model):
    """A user, group or channel a Telegram account has seen, with the access hash Telegram
    requires to address it. Kept here so the bridge can reach chats after a restart (the
    client itself keeps peers only in memory: its session file would hold the key unencrypted).
    """

    session = models.ForeignKey(TelegramSession, on_delete=models.CASCADE, related_name="peers")
    peer_id = models.BigIntegerField()
    access_hash = models.BigIntegerField(null=True, blank=True)
    peer_type = models.CharField(max_length=16)
    phone_number = models.CharField(max_length=32, blank=True)
    usernames = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "peer_id"], name="telegram_peer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.peer_type} {self.peer_id}"
