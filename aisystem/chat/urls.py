from __future__ import annotations

from django.urls import path

from aisystem.chat.views import (
    chat_page,
    connection_connect,
    connection_disconnect,
    connections_list,
)

urlpatterns = [
    path("chat/", chat_page, name="chat"),
    path("chat/connections/", connections_list, name="chat-connections"),
    path(
        "chat/connections/<slug:provider>/connect/",
        connection_connect,
        name="chat-connection-connect",
    ),
    path(
        "chat/connections/<slug:provider>/disconnect/",
        connection_disconnect,
        name="chat-connection-disconnect",
    ),
]
