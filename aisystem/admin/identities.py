from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from aisystem.models import Chat, Conversation, Identity, ReplyMode
from aisystem.services.conversations import conversations_end
from aisystem.services.identities import (
    identities_rate_limit_reset,
    identity_allow,
    identity_block,
)


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "__str__",
        "transport",
        "username",
        "display_name",
        "role",
        "is_blocked",
        "user",
        "last_seen_at",
    )
    list_filter = ("transport", "role", "is_blocked")
    search_fields = ("username", "display_name", "external_id", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("first_seen_at", "last_seen_at")
    autocomplete_fields = ("user",)
    date_hierarchy = "last_seen_at"
    actions = ("block", "allow", "reset_rate_limits")

    @admin.action(description="Block (ignore silently)")
    def block(self, request: HttpRequest, queryset: QuerySet[Identity]) -> None:
        for identity in queryset:
            identity_block(identity=identity, reason=f"Blocked by {request.user}")
        self.message_user(request, f"Blocked {len(queryset)} identities.", messages.SUCCESS)

    @admin.action(description="Allow (unblock and add an allow rule at the top)")
    def allow(self, request: HttpRequest, queryset: QuerySet[Identity]) -> None:
        for identity in queryset:
            identity_allow(identity=identity)
        self.message_user(request, f"Allowed {len(queryset)} identities.", messages.SUCCESS)

    @admin.action(description="Reset rate limits")
    def reset_rate_limits(self, request: HttpRequest, queryset: QuerySet[Identity]) -> None:
        removed = identities_rate_limit_reset(identities=list(queryset))
        self.message_user(
            request, f"Reset rate limits of {len(queryset)} identities ({removed} counters)."
        )


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "__str__",
        "transport",
        "chat_type",
        "workspace",
        "selected_workspace",
        "reply_mode",
        "status_reactions",
        "last_message_at",
    )
    list_filter = ("transport", "chat_type", "reply_mode", "channel_enabled", "workspace")
    search_fields = ("title", "external_id")
    list_select_related = ("workspace", "selected_workspace")
    autocomplete_fields = ("workspace", "selected_workspace")
    readonly_fields = ("created_at", "last_message_at")
    actions = ("answer_everything", "answer_mentions_only", "end_conversations")

    @admin.action(description="Answer every message (groups)")
    def answer_everything(self, request: HttpRequest, queryset: QuerySet[Chat]) -> None:
        self.message_user(request, f"{queryset.update(reply_mode=ReplyMode.ALL)} chats updated.")

    @admin.action(description="Answer only mentions and replies (groups)")
    def answer_mentions_only(self, request: HttpRequest, queryset: QuerySet[Chat]) -> None:
        count = queryset.update(reply_mode=ReplyMode.MENTION)
        self.message_user(request, f"{count} chats updated.")

    @admin.action(description="End the active conversations")
    def end_conversations(self, request: HttpRequest, queryset: QuerySet[Chat]) -> None:
        ended = conversations_end(
            conversations=Conversation.objects.filter(chat__in=queryset), reason="staff"
        )
        self.message_user(request, f"Ended {ended} conversations.")
