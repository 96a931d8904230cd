from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from aisystem.selectors import system_overview

# The dashboard summarises these models (message counts, key status, call errors, the bridge);
# a staff member who may not view all of them does not get the summary either.
OVERVIEW_PERMISSIONS = (
    "aisystem.view_message",
    "aisystem.view_apicredential",
    "aisystem.view_externalcall",
    "aisystem.view_telegramsession",
)


class AisystemAdminSite(admin.AdminSite):
    site_header = "aisystem"
    site_title = "aisystem admin"
    index_title = "System at a glance"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        context = dict(extra_context or {})
        if request.user.has_perms(OVERVIEW_PERMISSIONS):
            context["overview"] = system_overview()
        return super().index(request, extra_context=context)
