from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from aisystem.accounts.views import favicon, home
from aisystem.api import api
from aisystem.metrics.views import metrics_view

urlpatterns = [
    path("", home, name="home"),
    path("favicon.ico", favicon),
    path("accounts/", include("aisystem.accounts.urls")),  # sign-in for the browser chat
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus (aisystem/metrics/)
    path("live/", include("aisystem.live.urls")),
    path("connect/", include("aisystem.integrations.urls")),  # one-time connect links
    path("oauth/", include("social_django.urls", namespace="social")),  # begin, callback
    path("", include("aisystem.chat.urls")),  # /chat/
]
