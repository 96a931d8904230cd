from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from social_django.models import Association, Nonce, UserSocialAuth

from aisystem.admin.secrets import SecretFieldsAdmin
from aisystem.models import ApiCredential, ApiToken, ExternalCall
from aisystem.services.credentials import credentials_disable, credentials_enable
from aisystem.services.tokens import api_token_create, api_tokens_revoke

# social-auth's own storage is replaced by IntegrationAccount (encrypted token payload).
for _model in (UserSocialAuth, Nonce, Association):
    with contextlib.suppress(NotRegistered):
        admin.site.unregister(_model)


@admin.register(ApiCredential)
class ApiCredentialAdmin(SecretFieldsAdmin):
    list_display = (
        "label",
        "provider",
        "priority",
        "status",
        "cooldown_until",
        "last_used_at",
        "failure_count",
        "last_error",
    )
    list_filter = ("provider", "status")
    search_fields = ("label", "last_error")
    readonly_fields = ("last_used_at", "failure_count", "last_error", "created_at", "updated_at")
    fields = (
        "provider",
        "label",
        "secret",
        "priority",
        "status",
        "cooldown_until",
        *readonly_fields,
    )
    actions = ("disable", "enable")

    @admin.action(description="Disable (take out of rotation)")
    def disable(self, request: HttpRequest, queryset: QuerySet[ApiCredential]) -> None:
        self.message_user(request, f"Disabled {credentials_disable(credentials=queryset)} keys.")

    @admin.action(description="Enable (clear cooldown and failures)")
    def enable(self, request: HttpRequest, queryset: QuerySet[ApiCredential]) -> None:
        self.message_user(request, f"Enabled {credentials_enable(credentials=queryset)} keys.")


@admin.register(ExternalCall)
class ExternalCallAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "created_at",
        "service",
        "operation",
        "ok",
        "status_code",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "credential_label",
        "request_id",
        "error",
    )
    list_filter = ("ok", "service", "operation", "created_at")
    search_fields = ("request_id", "error", "credential_label")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ApiTokenAddForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ApiToken
        fields = ("name", "expires_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Tokens are created here or with ``createapitoken``; the value is shown once."""

    list_display = (
        "name",
        "prefix",
        "usable",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at", "created_at")
    search_fields = ("name", "prefix")
    list_select_related = ("created_by",)
    fields = (
        "name",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    @admin.display(boolean=True, description="Usable")
    def usable(self, token: ApiToken) -> bool:
        return token.is_usable

    def get_form(
        self, request: HttpRequest, obj: ApiToken | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Any]]:
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
            kwargs["fields"] = ("name", "expires_at")
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", "expires_at") if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # Only signed-in staff reach the admin; the check narrows the type.
        user = request.user if request.user.is_authenticated else None
        token, plaintext = api_token_create(name=obj.name, created_by=user)
        if obj.expires_at:
            ApiToken.objects.filter(pk=token.pk).update(expires_at=obj.expires_at)
        obj.pk = token.pk
        request._new_api_token = plaintext  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: Any = None
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token": obj,
            "plaintext": request._new_api_token,  # type: ignore[attr-defined]
            "opts": self.opts,
        }
        response = TemplateResponse(request, "admin/aisystem/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        self.message_user(request, f"Revoked {api_tokens_revoke(tokens=list(queryset))} tokens.")
