"""The live feed page, ``/live/``: a shell that ``static/live/feed.js`` fills from the socket."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from aisystem.live.config import live_feed_config

COUNTERS = [
    ("messages", "messages"),
    ("inflight", "in flight"),
    ("answered", "answered"),
    ("delivered", "delivered"),
    ("rejected", "rejected"),
    ("failed", "failed"),
    ("deferred", "deferred"),
    ("errors", "errors"),
    ("p50", "p50 latency"),
    ("tokens", "tokens"),
    ("cost", "cost"),
]
FILTERS = [
    ("chat", "Chat"),
    ("workspace", "Workspace"),
    ("transport", "Transport"),
    ("type", "Type"),
    ("status", "Status"),
]


@require_GET
@staff_member_required  # anonymous or non-staff: redirected to /admin/login/?next=/live/
def live_feed(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "live/feed.html",
        {
            "history_size": live_feed_config().history,
            "socket_path": "/ws/live/",
            "counters": COUNTERS,
            "filters": FILTERS,
        },
    )
