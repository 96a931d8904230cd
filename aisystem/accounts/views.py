"""Sign-in for everyone with an account, staff or not, and the site's front door.

The admin's own sign-in admits staff only, so the browser chat needs its own: Django's
``LoginView`` with the project's page, plus "Sign in with GitHub/Google" when staff configured
those. Accounts are made by staff in the admin; there is no self sign-up, because the gateway
spends the owner's Claude budget.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.views.decorators.cache import cache_control

from aisystem.accounts.slowdown import SLOWED_ATTRIBUTE
from aisystem.integrations.registry import providers_configured


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True  # a signed-in visitor goes straight on to ``next``

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # "Sign in with …" for each configured provider (aisystem.integrations.flow: only
        # people who exist here, never staff); why this attempt was slow, when it was.
        return super().get_context_data(**kwargs) | {
            "providers": providers_configured(),
            "slowed_seconds": math.ceil(getattr(self.request, SLOWED_ATTRIBUTE, 0)),
        }


class SignOutView(auth_views.LogoutView):
    """POST only (Django's rule since 5.0), then back to the sign-in page."""


def home(request: HttpRequest) -> HttpResponseRedirect:
    """``/``: staff land in the admin, everyone else in the chat (which asks anonymous
    visitors to sign in first)."""
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return HttpResponseRedirect(resolve_url("admin:index"))
    return HttpResponseRedirect(resolve_url("chat"))


@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """``/favicon.ico``, which browsers ask for on every page that names no icon (the admin's):
    the site's icon, rather than a 404 in every console."""
    return HttpResponseRedirect(staticfiles_storage.url("favicon.svg"))


def signin_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in (``AXES_LOCKOUT_CALLABLE``): the site's page,
    in plain words, with 429 Too Many Requests."""
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
