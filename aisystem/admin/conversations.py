from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from aisystem.models import Conversation, Message, Workspace
from aisystem.services.conversations import conversations_end, workspace_make_default


class WorkspaceForm(forms.ModelForm):  # type: ignore[type-arg]
    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        others = Workspace.objects.filter(is_default=True).exclude(pk=self.instance.pk)
        if cleaned.get("is_default") and others.exists():
            self.add_error(
                "is_default",
                f"“{others.get()}” is the default workspace. Use the “Make the default "
                "workspace” action on the list to switch.",
            )
        return cleaned


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = WorkspaceForm
    list_display = ("name", "slug", "model", "max_tokens", "is_default", "is_active", "updated_at")
    list_filter = ("is_active", "is_default", "model")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    actions = ("make_default",)

    @admin.action(description="Make the default workspace")
    def make_default(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one workspace.", level="error")
            return
        workspace = queryset.get()
        workspace_make_default(workspace=workspace)
        self.message_user(request, f"“{workspace}” is now the default workspace.")


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("active", "Active"), ("ended", "Ended")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> QuerySet[Conversation]:
        if self.value() == "active":
            return queryset.filter(ended_at__isnull=True)
        if self.value() == "ended":
            return queryset.filter(ended_at__isnull=False)
        return queryset


class ConversationForm(forms.ModelForm):  # type: ignore[type-arg]
    def clean(self) -> dict[str, Any]:
        # ended_at is read-only here, so Django skips the "one active conversation per chat and
        # workspace" constraint when validating; without this check the database refuses the
        # row and staff get a server error.
        super().clean()
        cleaned = self.cleaned_data
        chat, workspace = cleaned.get("chat"), cleaned.get("workspace")
        if chat is None or workspace is None or self.instance.ended_at is not None:
            return cleaned
        active = Conversation.objects.filter(chat=chat, workspace=workspace, ended_at__isnull=True)
        if active.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(
                "This chat already has an active conversation with this workspace. "
                "End that one first."
            )
        return cleaned


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ConversationForm
    list_display = ("__str__", "chat", "workspace", "messages", "started_at", "ended_at")
    list_filter = (ActiveFilter, "workspace", "chat__transport")
    search_fields = ("title", "chat__title", "chat__external_id")
    list_select_related = ("chat", "workspace")
    date_hierarchy = "started_at"
    readonly_fields = ("started_at", "ended_at", "ended_reason")
    autocomplete_fields = ("chat", "workspace", "started_by")
    actions = ("end",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        queryset: QuerySet[Conversation] = super().get_queryset(request)
        return queryset.annotate(message_count=Count("messages"))

    @admin.display(description="Messages", ordering="message_count")
    def messages(self, conversation: Conversation) -> int:
        return conversation.message_count  # type: ignore[attr-defined, no-any-return]

    @admin.action(description="End the conversation")
    def end(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        ended = conversations_end(conversations=queryset, reason="staff")
        self.message_user(request, f"Ended {ended} conversations.")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Messages are a record: staff read and filter them but do not edit them."""

    list_display = (
        "created_at",
        "direction",
        "kind",
        "status",
        "status_reason",
        "chat",
        "identity",
        "preview",
        "tokens",
        "cost_usd",
        "latency_ms",
    )
    list_filter = ("direction", "status", "kind", "transport", "created_at")
    search_fields = ("text", "transport_message_id", "identity__username", "chat__title")
    list_select_related = ("chat", "identity")
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="Text")
    def preview(self, message: Message) -> str:
        return message.text[:80] + ("…" if len(message.text) > 80 else "")

    @admin.display(description="Tokens")
    def tokens(self, message: Message) -> int:
        return message.total_tokens

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
