from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from aisystem.models import AccessRule, RateLimitPolicy
from aisystem.services.access import (
    access_rules_disable,
    access_rules_enable,
    access_rules_move,
)
from aisystem.services.identities import rate_limit_policies_reset


@admin.register(AccessRule)
class AccessRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("position", "matches", "action", "silent", "enabled", "description")
    list_display_links = ("matches",)
    list_editable = ("position", "enabled")
    list_filter = ("action", "enabled", "transport", "chat_type", "role")
    search_fields = ("description", "username", "identity__username", "chat__title")
    list_select_related = ("identity", "chat", "api_token")
    autocomplete_fields = ("identity", "chat", "api_token")
    ordering = ("position", "id")
    actions = ("move_to_top", "move_up", "move_down", "move_to_bottom", "enable", "disable")
    fieldsets = (
        (None, {"fields": ("action", "silent", "enabled", "position", "description")}),
        (
            "Matches when every criterion that is set holds",
            {
                "fields": (
                    "match_everyone",
                    "identity",
                    "username",
                    "chat",
                    "chat_type",
                    "role",
                    "transport",
                    "api_token",
                )
            },
        ),
    )

    @admin.display(description="Matches")
    def matches(self, rule: AccessRule) -> str:
        return rule.describe_match()

    @admin.action(description="Move to the top")
    def move_to_top(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        access_rules_move(rules=queryset, to="top")

    @admin.action(description="Move up one place")
    def move_up(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        access_rules_move(rules=queryset, to="up")

    @admin.action(description="Move down one place")
    def move_down(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        access_rules_move(rules=queryset, to="down")

    @admin.action(description="Move to the bottom")
    def move_to_bottom(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        access_rules_move(rules=queryset, to="bottom")

    @admin.action(description="Enable")
    def enable(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        count = access_rules_enable(rules=queryset)
        self.message_user(request, f"Enabled {count} rules.")

    @admin.action(description="Disable")
    def disable(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        count = access_rules_disable(rules=queryset)
        self.message_user(request, f"Disabled {count} rules.")


@admin.register(RateLimitPolicy)
class RateLimitPolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "target",
        "messages_per_window",
        "window_seconds",
        "daily_token_budget",
        "daily_cost_budget",
        "enabled",
    )
    list_filter = ("enabled", "role")
    search_fields = ("name", "identity__username", "chat__title")
    list_select_related = ("identity", "chat")
    autocomplete_fields = ("identity", "chat")
    actions = ("reset_counters",)

    @admin.display(description="Applies to")
    def target(self, policy: RateLimitPolicy) -> str:
        return policy.target_label()

    @admin.action(description="Reset the rate limit of everyone it covers")
    def reset_counters(self, request: HttpRequest, queryset: QuerySet[RateLimitPolicy]) -> None:
        removed = rate_limit_policies_reset(policies=list(queryset))
        self.message_user(request, f"Rate limits reset ({removed} counters cleared).")
