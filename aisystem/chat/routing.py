"""The browser chat's WebSocket route; ``aisystem.asgi`` includes it behind
``AllowedHostsOriginValidator(AuthMiddlewareStack(...))``."""

from __future__ import annotations

from django.urls import path

from aisystem.chat.consumers import ChatConsumer
from aisystem.chat.protocol import WS_PATH

websocket_urlpatterns = [
    path(WS_PATH, ChatConsumer.as_asgi()),
]
