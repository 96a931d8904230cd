from __future__ import annotations

from django.urls import path

from aisystem.chat.views import chat_page

urlpatterns = [
    path("chat/", chat_page, name="chat"),
]
