from __future__ import annotations

from django.urls import path

from aisystem.integrations import views

app_name = "integrations"

urlpatterns = [
    path("<str:token>/", views.connect, name="connect"),
]
