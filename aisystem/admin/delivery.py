from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from aisystem.admin.secrets import SecretFieldsAdmin
from aisystem.models import OutboxItem, TelegramSession
from aisystem.services.delivery import outbox_items_retry


@admin.register(OutboxItem)
class OutboxItemAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "created_at",
        "chat",
        "status",
        "attempts",
        "available_at",
        "sent_at",
        "preview",
        "last_error",
    )
    list_filter = ("status", "transport")
    search_fields = ("text", "idempotency_key", "chat__title")
    list_select_related = ("chat",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "idempotency_key",
        "source_message",
        "attempts",
        "sent_at",
        "sent_transport_message_id",
        "last_error",
        "created_at",
    )
    raw_id_fields = ("chat",)
    actions = ("retry_now",)

    @admin.display(description="Text")
    def preview(self, item: OutboxItem) -> str:
        return item.text[:60] + ("…" if len(item.text) > 60 else "")

    def save_model(self, request: HttpRequest, obj: OutboxItem, form: Any, change: bool) -> None:
        # The key is read-only here; an item typed in by staff still needs a unique one.
        if not obj.idempotency_key:
            obj.idempotency_key = f"admin:{uuid.uuid4().hex}"
        super().save_model(request, obj, form, change)

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxItem]) -> None:
        count = outbox_items_retry(items=queryset)
        self.message_user(request, f"{count} deliveries queued again.")


@admin.register(TelegramSession)
class TelegramSessionAdmin(SecretFieldsAdmin):
    list_display = (
        "__str__",
        "mode",
        "is_enabled",
        "state",
        "heartbeat_at",
        "last_update_at",
        "lag_seconds",
        "in_flight",
    )
    list_filter = ("mode", "state", "is_enabled")
    search_fields = ("name", "account_username")
    readonly_fields = (
        "account_user_id",
        "account_username",
        "state",
        "heartbeat_at",
        "last_update_at",
        "lag_seconds",
        "in_flight",
        "runner",
        "update_state",
        "created_at",
        "updated_at",
    )
