"""``/chat/``: the browser chat page. The conversation itself happens over ``/ws/chat/``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url

from aisystem.chat.protocol import WS_PATH, frame_limit_bytes


@login_required
def chat_page(request: HttpRequest) -> HttpResponse:
    """The page; anonymous visitors are sent to the sign-in page, and back here after.
    The sign-in address is also where the page goes when its socket is refused (4401)."""
    max_chars = settings.PIPELINE["MAX_INPUT_CHARS"]
    login = resolve_url(settings.LOGIN_URL)
    context = {
        "ws_path": f"/{WS_PATH}",
        "login_url": f"{login}?{urlencode({'next': request.get_full_path()}, safe='/')}",
        "max_chars": max_chars,
        "frame_limit": frame_limit_bytes(max_chars),
    }
    return render(request, "chat/chat.html", context)
