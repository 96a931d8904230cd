"""The live feed page, ``/live/``: a shell that ``static/live/feed.js`` fills from the socket."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from aisystem.live.access import access_live_feed
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


@never_cache  # every conversation is on it: never kept in a browser or proxy cache
@require_GET
@staff_member_required  # anonymous or non-staff: redirected to /admin/login/?next=/live/
def live_feed(request: HttpRequest) -> HttpResponse:
    """The page, for those ``access_live_feed`` lets watch. Staff without the permission to
    view messages get a 403, as on the admin's message pages (signing in again cannot help)."""
    if not access_live_feed(request.user).allowed:
        raise PermissionDenied("viewing messages is not permitted for this account")
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
