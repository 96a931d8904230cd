"""WebSocket routes of the live feed (``aisystem.asgi`` mounts them)."""

from __future__ import annotations

from django.urls import path

from aisystem.live.consumers import LiveFeedConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveFeedConsumer.as_asgi(), name="live-feed-socket"),
]
