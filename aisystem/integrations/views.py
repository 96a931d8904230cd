"""The pages of the connect flow: the link's page with its one button, and its problems.

``GET /connect/<token>/`` names what is being connected and for whom; its button POSTs (with
CSRF) to the same address, which spends the link and starts social-auth's flow (``state``
always, PKCE where the provider has it). The provider calls back at social-auth's
``/oauth/complete/<provider>/``; ``flow.account_record`` renders the last page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from social_core.actions import do_auth
from social_core.exceptions import SocialAuthBaseException

from aisystem.integrations.base import social_backend
from aisystem.integrations.flow import (
    SESSION_LINK,
    ConnectLinkSpent,
    NoSuchPerson,
    StaffUsePassword,
)
from aisystem.integrations.links import LinkProblem, connect_link_open, connect_link_start
from aisystem.integrations.registry import provider_get
from aisystem.models import ConnectLink

PROBLEMS = {
    "tampered": "This link is not one the assistant made: it may have been cut or changed.",
    "expired": "This link has expired: links work for 10 minutes.",
    "used": "This link has been used already: each link works once.",
    "unknown": "This link is not valid (any more).",
    "unconfigured": "This provider is no longer set up here.",
}


@require_http_methods(["GET", "POST"])
def connect(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = connect_link_open(token) if request.method == "GET" else connect_link_start(token)
    except LinkProblem as problem:
        return problem_page(request, PROBLEMS[problem.problem], status=410)
    provider = provider_get(link.provider)
    if provider is None:
        return problem_page(request, PROBLEMS["unconfigured"], status=410)
    if request.method == "GET":
        context = {"provider": provider, "identity": link.identity, "who": _who(link)}
        return render(request, "integrations/connect.html", context)
    request.session[SESSION_LINK] = link.pk
    backend = social_backend(
        provider.name, request, redirect_uri=reverse("social:complete", args=[provider.name])
    )
    response: HttpResponse = do_auth(backend)
    return response


def problem_page(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    return render(request, "integrations/problem.html", {"message": message}, status=status)


def _who(link: ConnectLink) -> str:
    identity = link.identity
    transport = {"telegram": "Telegram user", "web": "browser-chat user", "api": "API user"}
    name = f"@{identity.username}" if identity.username else identity.display_name
    return f"{transport.get(identity.transport, 'user')} {name or identity.external_id}"


class SocialAuthErrorPage:
    """Middleware around social-auth's own views (``/oauth/…``).

    A provider staff have not configured answers 404 there, as everywhere else. A social-auth
    failure (``state`` mismatch, the person declined at the provider, an account connected to
    someone else, a refused sign-in) becomes a clear page with 400, never a server error; the
    connect link it spent stays spent."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., HttpResponse],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or match.namespace != "social":
            return None
        if provider_get(str(kwargs.get("backend", ""))) is None:
            return problem_page(request, "There is no such provider here.", status=404)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, SocialAuthBaseException):
            return None
        if hasattr(request, "session"):
            request.session.pop(SESSION_LINK, None)
        return problem_page(request, _explain(exception), status=400)


def _explain(exception: SocialAuthBaseException) -> str:
    """The person's words for social-auth's error codes; our own errors say it themselves."""
    if isinstance(exception, ConnectLinkSpent | NoSuchPerson | StaffUsePassword):
        return str(exception)
    code = exception.code
    if code == "identity_in_use":
        return (
            "That account is already connected to another person here. Disconnect it there "
            "first, or connect a different account."
        )
    if code in ("state_mismatch", "session_context_missing", "user_mismatch", "nonce_mismatch"):
        return (
            "The answer from the provider did not match this browser session, so nothing was "
            "connected. Ask the assistant for a new link and open it in one browser."
        )
    if code == "authorization_declined":
        return "You declined at the provider, so nothing was connected."
    if code in ("connection_failed", "timeout", "unavailable", "rate_limited", "http_error"):
        return "The provider could not be reached just now, so nothing was connected."
    return f"The provider's answer could not be used ({code}), so nothing was connected."
