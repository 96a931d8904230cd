"""``/chat/``: the browser chat page, and its Connections panel. The conversation itself
happens over ``/ws/chat/``.

The panel's endpoints act only for the signed-in user, on their own accounts:

* ``GET /chat/connections/``: JSON ``{"connections": [{provider, label, account,
  connect_url, disconnect_url}]}``, where ``account`` is ``{id, login, status}`` or null; an
  empty list when no provider is set up;
* ``POST /chat/connections/<provider>/connect/`` (a form with CSRF, opened in a new tab):
  a redirect to a fresh one-time connect link, the same link ``/connect`` sends;
* ``POST /chat/connections/<provider>/disconnect/`` (CSRF in ``X-CSRFToken``): revokes the
  account at the provider and removes it; JSON ``{"message": …}``, the words to show.

Each one parses the request, calls one selector or service, and shapes the answer.
"""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from aisystem.chat.protocol import WS_PATH, frame_limit_bytes
from aisystem.chat.selectors import chat_connections
from aisystem.chat.services import chat_connect_link, chat_disconnect
from aisystem.integrations.registry import providers_configured
from pipeline.claude.client import claude_status

NOT_SIGNED_IN = "Sign in again to manage your connections."


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


@never_cache  # the conversation is never kept in a browser or proxy cache
@login_required
def chat_page(request: HttpRequest) -> HttpResponse:
    """The page; anonymous visitors are sent to the sign-in page, and back here after.
    The sign-in address is also where the page goes when its socket is refused (4401).
    The Connections panel is offered only when staff configured a provider."""
    max_chars = settings.PIPELINE["MAX_INPUT_CHARS"]
    login = resolve_url(settings.LOGIN_URL)
    context = {
        "ws_path": f"/{WS_PATH}",
        "login_url": f"{login}?{urlencode({'next': request.get_full_path()}, safe='/')}",
        "max_chars": max_chars,
        "frame_limit": frame_limit_bytes(max_chars),
        "staff_note": claude_setup_note() if request.user.is_staff else "",
        "connections_offered": bool(providers_configured()),
    }
    return render(request, "chat/chat.html", context)


@require_GET
def connections_list(request: HttpRequest) -> JsonResponse:
    """The panel's contents: JSON, and 401 rather than a sign-in redirect the page's
    ``fetch`` would follow into HTML."""
    user_id = _signed_in(request)
    if user_id is None:
        return JsonResponse({"message": NOT_SIGNED_IN}, status=401)
    views = chat_connections(user_id=user_id)
    shown = [
        asdict(view)
        | {
            "connect_url": reverse("chat-connection-connect", args=[view.provider]),
            "disconnect_url": reverse("chat-connection-disconnect", args=[view.provider]),
        }
        for view in views
    ]
    return JsonResponse({"connections": shown})


@login_required
@require_POST
def connection_connect(request: HttpRequest, provider: str) -> HttpResponse:
    """On to a fresh one-time link for the signed-in user (the form opens a new tab, where
    the link's page says what is connected for whom); 404 for a provider not set up."""
    user_id = _signed_in(request)
    assert user_id is not None  # login_required
    link = chat_connect_link(user_id=user_id, provider=provider)
    if link is None:
        raise Http404("No such provider is set up here.")
    return HttpResponseRedirect(link, status=303)


@require_POST
def connection_disconnect(request: HttpRequest, provider: str) -> JsonResponse:
    user_id = _signed_in(request)
    if user_id is None:
        return JsonResponse({"message": NOT_SIGNED_IN}, status=401)
    message = chat_disconnect(user_id=user_id, provider=provider)
    return JsonResponse({"message": message})


def _signed_in(request: HttpRequest) -> int | None:
    """The signed-in user's id, or None for an anonymous visitor."""
    user = request.user
    return int(user.pk) if user.is_authenticated and user.pk is not None else None
