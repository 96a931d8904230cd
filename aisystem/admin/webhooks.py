"""Outgoing webhooks in the admin: the endpoints, and each delivery with its attempts.

A signing secret is shown exactly once: when an endpoint is added without one (it is then
generated) and when it is rotated. The page that shows it is never cached.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from aisystem.admin.secrets import SecretFieldsAdmin, SecretFieldsForm
from aisystem.event_catalog import PUBLIC_EVENT_TYPES
from aisystem.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from aisystem.webhooks.services import (
    WebhookConfigError,
    event_types_check,
    webhook_deliveries_resend,
    webhook_subscription_create,
    webhook_subscription_rotate_secret,
    webhook_subscriptions_activate,
    webhook_subscriptions_deactivate,
    webhook_test_send,
    webhook_url_check,
)

ONCE_PAGE = "admin/aisystem/webhooksubscription/secret.html"


class WebhookSubscriptionForm(SecretFieldsForm):
    """The URL and the event types are checked as the command line checks them."""

    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookSubscription
        fields = ("name", "url", "signing_secret", "event_types", "is_active")
        help_texts = {
            "event_types": "A JSON list, empty for every public type. Public types: "
            + ", ".join(PUBLIC_EVENT_TYPES),
        }

    def clean_url(self) -> str:
        try:
            return webhook_url_check(self.cleaned_data["url"])
        except WebhookConfigError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_event_types(self) -> list[str]:
        kinds = self.cleaned_data.get("event_types") or []
        if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
            raise forms.ValidationError('A JSON list of event types, such as ["job.failed"].')
        try:
            return event_types_check(kinds)
        except WebhookConfigError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(SecretFieldsAdmin):
    form = WebhookSubscriptionForm
    list_display = (
        "name",
        "url",
        "is_active",
        "disabled_at",
        "failing_since",
        "last_delivery_at",
        "last_status",
        "deliveries_link",
    )
    list_filter = ("is_active", "disabled_at")
    search_fields = ("name", "url")
    readonly_fields = (
        "failure_count",
        "failing_since",
        "disabled_at",
        "previous_secret_expires_at",
        "last_delivery_at",
        "last_status",
        "created_at",
    )
    fields = ("name", "url", "signing_secret", "event_types", "is_active", *readonly_fields)
    actions = ("activate", "deactivate", "rotate_secret", "send_test_event")

    @admin.display(description="Deliveries")
    def deliveries_link(self, subscription: WebhookSubscription) -> str:
        url = reverse("admin:aisystem_webhookdelivery_changelist")
        return format_html(
            '<a href="{}?subscription__id__exact={}">deliveries</a>', url, subscription.pk
        )

    def save_model(
        self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        generated = not obj.signing_secret
        subscription, secret = webhook_subscription_create(
            name=obj.name,
            url=obj.url,
            event_types=obj.event_types,
            signing_secret=obj.signing_secret,
            is_active=obj.is_active,
        )
        obj.pk = subscription.pk
        request._webhook_secret = secret if generated else ""  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: WebhookSubscription, post_url_continue: Any = None
    ) -> HttpResponse:
        secret = getattr(request, "_webhook_secret", "")
        if not secret:
            return super().response_add(request, obj, post_url_continue)
        return self._secrets_page(request, "Webhook added", [(obj.name, secret)])

    @admin.action(description="Activate (also re-enables endpoints disabled for failing)")
    def activate(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        count = webhook_subscriptions_activate(subscription_ids=_ids(queryset))
        self.message_user(request, f"Activated {count} webhooks.")

    @admin.action(description="Deactivate")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        count = webhook_subscriptions_deactivate(subscription_ids=_ids(queryset))
        self.message_user(request, f"Deactivated {count} webhooks.")

    @admin.action(description="Rotate secret (the old one keeps signing for an overlap)")
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]
    ) -> HttpResponse:
        rotated = [
            (subscription.name, webhook_subscription_rotate_secret(subscription_id=subscription.pk))
            for subscription in queryset.only("pk", "name")
        ]
        return self._secrets_page(request, "Signing secrets rotated", rotated)

    @admin.action(description="Send a test event")
    def send_test_event(
        self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]
    ) -> None:
        for pk in _ids(queryset):
            webhook_test_send(subscription_id=pk)
        self.message_user(request, f"Queued a test event for {queryset.count()} webhooks.")

    def _secrets_page(
        self, request: HttpRequest, title: str, secrets: list[tuple[str, str]]
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "secrets": secrets,
            "overlap_hours": settings.WEBHOOK_ROTATION_OVERLAP_HOURS,
            "opts": self.opts,
        }
        response = TemplateResponse(request, ONCE_PAGE, context)
        response["Cache-Control"] = "no-store"
        return response


class WebhookAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WebhookAttempt
    fields = (
        "number",
        "started_at",
        "finished_at",
        "ok",
        "status_code",
        "latency_ms",
        "response_excerpt",
        "error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: deliveries change only by being sent, or resent with the action."""

    list_display = (
        "created_at",
        "subscription",
        "event_type",
        "webhook_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_latency_ms",
        "last_response_excerpt",
    )
    list_filter = ("status", "subscription", "created_at")
    search_fields = ("webhook_id", "event__kind", "last_error")
    list_select_related = ("subscription", "event")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (WebhookAttemptInline,)
    fields = (
        "subscription",
        "event",
        "webhook_id",
        "status",
        "attempts",
        "attempts_before_resend",
        "next_attempt_at",
        "delivered_at",
        "last_status_code",
        "last_latency_ms",
        "last_response_excerpt",
        "last_error",
        "created_at",
    )
    readonly_fields = fields
    actions = ("resend",)

    @admin.display(description="Event", ordering="event__kind")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.kind

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list may run the "resend" action; a delivery's own page is for reading.
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Resend (same webhook-id)", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = webhook_deliveries_resend(delivery_ids=_ids(queryset))
        self.message_user(request, f"Queued {count} deliveries to be sent again.")


def _ids(queryset: QuerySet[Any]) -> list[int]:
    return list(queryset.values_list("pk", flat=True))
