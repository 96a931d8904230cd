from __future__ import annotations

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Message pipeline"

    def ready(self) -> None:
        from pipeline.config_cache import connect_invalidation

        connect_invalidation()
