from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from social_django.models import AbstractUserSocialAuth

from aisystem.fields import EncryptedJSONField, EncryptedTextField
from aisystem.models.choices import CredentialStatus, IntegrationStatus, PendingActionStatus


class ApiCredential(models.Model):
    """An API key for an external service, used by priority then least recently used."""

    provider = models.CharField(max_length=32, default="anthropic")
    label = models.CharField(max_length=100, help_text="How logs and the admin name this key.")
    secret = EncryptedTextField(help_text="Write-only: never shown again once saved.")
    priority = models.IntegerField(default=0, help_text="Lower numbers are tried first.")
    status = models.CharField(
        max_length=16, choices=CredentialStatus.choices, default=CredentialStatus.ACTIVE
    )
    cooldown_until = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "API credential"
        verbose_name_plural = "API credentials"
        ordering = ["provider", "priority", "label"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "label"], name="credential_unique_label"),
        ]
        indexes = [
            models.Index(fields=["provider", "status", "priority"], name="credential_pick_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.label}"


class ExternalCall(models.Model):
    """One call to an external service. Never holds a key, a token or message content."""

    service = models.CharField(max_length=32)
    operation = models.CharField(max_length=64)
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=128, blank=True)
    credential = models.ForeignKey(
        ApiCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    credential_label = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="external_call_created_idx"),
            models.Index(fields=["service", "created_at"], name="external_call_service_idx"),
            models.Index(fields=["ok", "created_at"], name="external_call_ok_idx"),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else f"failed ({self.status_code or 'no status'})"
        return f"{self.service} {self.operation} {outcome}"


class ApiToken(models.Model):
    """A REST API token. Only its SHA-256 is stored; the token is shown once at creation."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_tokens",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IntegrationAccount(AbstractUserSocialAuth):
    """A person's OAuth-connected account (social-auth's storage), used by the assistant's
    tools with that person's token.

    ``extra_data`` (social-auth's token payload: access and refresh tokens, expiry) is
    encrypted at rest and never shown. The columns beside it are what staff and the person
    may see. ``refresh_lease_until`` makes a token refresh single-flight across processes:
    whoever sets it with a conditional update refreshes; the others wait for the new token.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_accounts"
    )
    extra_data = EncryptedJSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=IntegrationStatus.choices, default=IntegrationStatus.CONNECTED
    )
    login = models.CharField(max_length=255, blank=True, help_text="The name the provider shows.")
    scopes = models.CharField(max_length=1000, blank=True, help_text="Granted, space-separated.")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the access token expires; empty if it does not."
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    notify_chat = models.ForeignKey(
        "aisystem.Chat",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where the person connected it from: told there when it needs reconnecting.",
    )
    notify_identity = models.ForeignKey(
        "aisystem.Identity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who connected it.",
    )
    reconnect_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "integration account"
        constraints = [
            models.UniqueConstraint(fields=["provider", "uid"], name="integration_account_unique"),
            models.CheckConstraint(condition=~models.Q(uid=""), name="integration_account_uid"),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="integration_refresh_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} account {self.login or self.uid} of {self.user}"


class ConnectLink(models.Model):
    """A one-time link that connects a provider account to the identity that asked for it.

    The URL carries ``nonce`` signed with the secret key; the row makes it single-use
    (``started_at`` is set by a conditional update when the button is pressed) and remembers
    the chat to tell when the account is connected.
    """

    nonce = models.CharField(max_length=64, unique=True)
    provider = models.CharField(max_length=32)
    identity = models.ForeignKey(
        "aisystem.Identity", on_delete=models.CASCADE, related_name="connect_links"
    )
    chat = models.ForeignKey(
        "aisystem.Chat", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    account = models.ForeignKey(
        IntegrationAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="connect_link_expires_idx")]

    def __str__(self) -> str:
        return f"connect {self.provider} for {self.identity}"


class PendingAction(models.Model):
    """A write a tool proposed (create an issue, a comment, an event), waiting for the person
    who was asked to confirm or cancel it.

    ``arguments`` is what Claude asked for, validated by the tool; it runs at most once: a
    confirmation claims the row with a conditional update from pending to running.
    """

    tool = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    summary = models.CharField(max_length=500, help_text="What would happen, as the person saw.")
    identity = models.ForeignKey(
        "aisystem.Identity", on_delete=models.CASCADE, related_name="pending_actions"
    )
    chat = models.ForeignKey("aisystem.Chat", on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        "aisystem.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=PendingActionStatus.choices, default=PendingActionStatus.PENDING
    )
    result = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["chat", "status", "created_at"], name="pending_action_chat_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} ({self.status})"
