from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from social_django.models import AbstractUserSocialAuth

from aisystem.fields import EncryptedJSONField, EncryptedTextField
from aisystem.models.choices import CredentialStatus


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


class WebhookSubscription(models.Model):
    """An outgoing webhook: events are POSTed to ``url`` and signed with ``signing_secret``."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    signing_secret = EncryptedTextField(
        blank=True, help_text="Write-only. Used to sign each delivery (HMAC-SHA256)."
    )
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types to send; empty means all."
    )
    is_active = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


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

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IntegrationAccount(AbstractUserSocialAuth):
    """An OAuth-connected account (social-auth storage) whose token payload is encrypted."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_accounts"
    )
    extra_data = EncryptedJSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "uid"], name="integration_account_unique"),
            models.CheckConstraint(condition=~models.Q(uid=""), name="integration_account_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} account of {self.user}"
