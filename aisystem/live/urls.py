from __future__ import annotations

from django.urls import path

from aisystem.live.views import live_feed

urlpatterns = [
    path("", live_feed, name="live-feed"),
]
