"""Alerts in the admin: the rules staff edit, and the read-only history of what was sent.

The form checks a rule as the dispatcher needs it: event types an alert may be sent for, and
exactly the target its destination uses.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from aisystem.alerts.destinations import AlertSendError
from aisystem.alerts.dispatch import alert_rule_test_send
from aisystem.alerts.rules import (
    ALERTABLE_EVENT_TYPES,
    RESOLVES,
    AlertConfigError,
    alert_destination_check,
    alert_event_types_check,
    alert_rules_enable,
)
from aisystem.models import Alert, AlertRule
from aisystem.services.outbox import outbox_enqueue

_RESOLVED_BY = {opened: closing for closing, opened in RESOLVES.items()}


def _type_label(kind: str) -> str:
    closing = _RESOLVED_BY.get(kind)
    return f"{kind} (resolved by {closing})" if closing else kind


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    event_types = forms.MultipleChoiceField(
        choices=[(kind, _type_label(kind)) for kind in ALERTABLE_EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = AlertRule
        fields = (
            "name",
            "enabled",
            "event_types",
            "match_data",
            "destination",
            "chat",
            "email_to",
            "webhook",
            "dedup_minutes",
        )

    def clean_event_types(self) -> list[str]:
        try:
            return alert_event_types_check(self.cleaned_data.get("event_types") or [])
        except AlertConfigError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_match_data(self) -> dict[str, object]:
        data = self.cleaned_data.get("match_data") or {}
        if not isinstance(data, dict):
            raise forms.ValidationError('A JSON object, such as {"reason": "heartbeat missing"}.')
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chat, webhook = cleaned.get("chat"), cleaned.get("webhook")
        try:
            alert_destination_check(
                destination=cleaned.get("destination") or "",
                chat_id=chat.pk if chat else None,
                email_to=cleaned.get("email_to") or "",
                webhook_id=webhook.pk if webhook else None,
            )
        except AlertConfigError as exc:
            raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = AlertRuleForm
    list_display = ("name", "enabled", "types", "destination", "target", "dedup_minutes")
    list_filter = ("enabled", "destination")
    search_fields = ("name",)
    list_select_related = ("chat", "webhook")
    readonly_fields = ("created_at", "updated_at")
    actions = ("enable", "disable", "send_test")

    @admin.display(description="Event types")
    def types(self, rule: AlertRule) -> str:
        return ", ".join(str(kind) for kind in rule.event_types or [])

    @admin.display(description="Sent to")
    def target(self, rule: AlertRule) -> str:
        if rule.destination == AlertRule.Destination.TELEGRAM_CHAT:
            return str(rule.chat or "—")
        if rule.destination == AlertRule.Destination.WEBHOOK:
            return str(rule.webhook or "—")
        return rule.email_to.strip() or "every superuser with an address"

    @admin.action(description="Enable")
    def enable(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        count = alert_rules_enable(rule_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Enabled {count} alert rules.")

    @admin.action(description="Disable")
    def disable(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = alert_rules_enable(rule_ids=ids, enabled=False)
        self.message_user(request, f"Disabled {count} alert rules.")

    @admin.action(description="Send a test alert (Telegram and e-mail rules)")
    def send_test(self, request: HttpRequest, queryset: QuerySet[AlertRule]) -> None:
        for rule in queryset.only("pk", "name"):
            try:
                sent = alert_rule_test_send(rule_id=rule.pk, outbox_enqueue=outbox_enqueue)
            except AlertSendError as exc:
                self.message_user(request, f"{rule.name}: {exc}", messages.WARNING)
            except Exception as exc:  # the mail server's own words help staff most
                self.message_user(request, f"{rule.name}: not sent ({exc})", messages.ERROR)
            else:
                outcome = "test sent" if sent else "nobody to send to (no superuser address)"
                self.message_user(request, f"{rule.name}: {outcome}.")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: alerts change only by being sent and resolved."""

    list_display = (
        "created_at",
        "rule",
        "kind",
        "subject",
        "summary",
        "state",
        "suppressed",
        "sent_at",
        "resolved_at",
        "resolution_state",
    )
    list_filter = ("state", "resolution_state", "kind", "rule")
    search_fields = ("summary", "kind", "subject")
    list_select_related = ("rule",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = (
        "rule",
        "event",
        "kind",
        "subject",
        "summary",
        "state",
        "error",
        "suppressed",
        "window_ends_at",
        "created_at",
        "sent_at",
        "resolved_at",
        "resolved_by",
        "resolution_state",
        "resolution_sent_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
