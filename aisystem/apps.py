from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class AisystemConfig(AppConfig):
    name = "aisystem"
    verbose_name = "Assistant"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aisystem import checks, job_events, schedules  # noqa: F401  (checks, signals)


class AisystemAdminConfig(AdminConfig):
    default_site = "aisystem.admin_site.AisystemAdminSite"
