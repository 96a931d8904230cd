from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from aisystem.selectors import system_overview


class AisystemAdminSite(admin.AdminSite):
    site_header = "aisystem"
    site_title = "aisystem admin"
    index_title = "System at a glance"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        context = {**(extra_context or {}), "overview": system_overview()}
        return super().index(request, extra_context=context)
