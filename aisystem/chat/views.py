"""``/chat/``: the browser chat page. The conversation itself happens over ``/ws/chat/``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url

from aisystem.chat.protocol import WS_PATH, frame_limit_bytes
from pipeline.claude.client import claude_status


def claude_setup_note() -> str:
    """What a staff member should know when Claude cannot answer now (shown on their page
    only: users just see that the assistant is temporarily unavailable)."""
    status = claude_status()
    if not status.usable_credentials and not status.fallback_key_configured:
        return (
            "No usable Claude API key is configured, so messages are kept and answered once "
            "one is: add one under Admin → API credentials, or set ANTHROPIC_API_KEY."
        )
    if status.breaker_state != "closed":
        return (
            f"Claude's circuit breaker is {status.breaker_state} after repeated failures: "
            "messages are kept and answered when Claude is back."
        )
    return ""


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
        "staff_note": claude_setup_note() if request.user.is_staff else "",
    }
    return render(request, "chat/chat.html", context)
