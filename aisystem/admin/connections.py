"""People's connected accounts (OAuth integrations), their connect links and the writes that
wait for them. Tokens are never shown: the token payload is not even loaded."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from aisystem.integrations.accounts import account_disconnect
from aisystem.models import ConnectLink, IntegrationAccount, PendingAction


@admin.register(IntegrationAccount)
class IntegrationAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "user",
        "provider",
        "login",
        "status",
        "scopes",
        "expires_at",
        "last_used_at",
        "created",
    )
    list_filter = ("provider", "status")
    search_fields = ("user__username", "login", "uid")
    list_select_related = ("user",)
    fields = (
        "user",
        "provider",
        "uid",
        "login",
        "status",
        "scopes",
        "expires_at",
        "refreshed_at",
        "last_used_at",
        "last_error",
        "notify_chat",
        "notify_identity",
        "reconnect_notified_at",
        "created",
        "modified",
    )
    readonly_fields = fields
    actions = ("revoke",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[IntegrationAccount]:
        return super().get_queryset(request).defer("extra_data")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke at the provider and remove")
    def revoke(self, request: HttpRequest, queryset: QuerySet[IntegrationAccount]) -> None:
        outcomes = [
            account_disconnect(account_id=pk) for pk in queryset.values_list("pk", flat=True)
        ]
        revoked = sum(outcome.revoked for outcome in outcomes)
        noun = "account" if len(outcomes) == 1 else "accounts"
        self.message_user(
            request, f"Removed {len(outcomes)} {noun}; {revoked} revoked at the provider."
        )
        for outcome in outcomes:
            if not outcome.revoked:
                self.message_user(
                    request, f"Removed here, not revoked: {outcome.detail}.", level="warning"
                )


@admin.register(ConnectLink)
class ConnectLinkAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: links are made by /connect; the nonce is not shown (it is half a link)."""

    list_display = (
        "provider",
        "identity",
        "created_at",
        "expires_at",
        "started_at",
        "completed_at",
    )
    list_filter = ("provider",)
    list_select_related = ("identity",)
    fields = (
        "provider",
        "identity",
        "chat",
        "created_at",
        "expires_at",
        "started_at",
        "completed_at",
        "account",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PendingAction)
class PendingActionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Writes the assistant proposed, waiting for the person who was asked."""

    list_display = (
        "tool",
        "summary",
        "identity",
        "status",
        "created_at",
        "expires_at",
        "decided_at",
    )
    list_filter = ("status", "tool")
    list_select_related = ("identity",)
    search_fields = ("summary",)
    fields = (
        "tool",
        "summary",
        "identity",
        "chat",
        "status",
        "result",
        "created_at",
        "expires_at",
        "decided_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
