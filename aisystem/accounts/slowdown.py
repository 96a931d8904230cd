"""A per-username slow-down across addresses: the sign-in's second line of defence.

django-axes refuses one username from one address after ``AISYSTEM_SIGNIN_FAILURES`` failures.
That does not stop a guesser with many addresses, and a lock keyed on the username alone would
let anyone lock its owner out by failing on purpose. So failures for one username are also
counted over every address (axes' ``AccessAttempt`` rows of the lockout window), and past
``AISYSTEM_SIGNIN_SLOW_AFTER`` every sign-in for that username, right password or wrong, from
any address, waits before it is checked: ``FIRST_DELAY_SECONDS``, doubling with each further
failure, at most ``AISYSTEM_SIGNIN_SLOW_MAX_SECONDS``. It slows and never refuses: the owner
with the right password still gets in, at worst that much later.

The wait is an ``asyncio.sleep`` in the web process, so a waiting sign-in holds no thread (under
WSGI, and in the test client, it is a plain sleep). The sign-in page then says why it was slow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from axes.models import AccessAttempt  # type: ignore[import-untyped]
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import sync_and_async_middleware

SLOWED_ATTRIBUTE = "signin_slowed_seconds"  # set on the request; the sign-in page shows it


def signin_delay_seconds(
    failures: int, *, slow_after: int, first_delay: float, max_delay: float
) -> float:
    """How long a sign-in waits after ``failures`` recent failures for its username: nothing
    below ``slow_after``, then ``first_delay`` doubling per failure, capped at ``max_delay``."""
    if failures < slow_after or max_delay <= 0:
        return 0.0
    doublings = min(failures - slow_after, 32)  # 2**32 s is past any cap
    return float(min(first_delay * 2**doublings, max_delay))


def username_recent_failures(username: str) -> int:
    """Failed sign-ins for ``username`` from all addresses within the lockout window."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    total = AccessAttempt.objects.filter(username=username, attempt_time__gte=since).aggregate(
        total=Sum("failures_since_start")
    )["total"]
    return int(total or 0)


def _signin_username(request: HttpRequest) -> str | None:
    """The username a sign-in POST names, on the site's or the admin's sign-in page."""
    if request.method != "POST" or request.path_info not in _signin_paths():
        return None
    username = request.POST.get("username", "")
    return username or None


def _signin_paths() -> set[str]:
    return {reverse("login"), reverse("admin:login")}


def _delay_for(username: str) -> float:
    config = settings.SIGNIN_SLOWDOWN
    return signin_delay_seconds(
        username_recent_failures(username),
        slow_after=int(config["AFTER_FAILURES"]),
        first_delay=config["FIRST_DELAY_SECONDS"],
        max_delay=config["MAX_DELAY_SECONDS"],
    )


@sync_and_async_middleware
def signin_slowdown_middleware(get_response: Callable[[HttpRequest], Any]) -> Any:
    """Waits before a sign-in whose username has failed too often (see the module)."""
    if iscoroutinefunction(get_response):
        async_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = get_response

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            username = _signin_username(request)
            if username is not None:
                delay = await sync_to_async(_delay_for)(username)
                if delay > 0:
                    setattr(request, SLOWED_ATTRIBUTE, delay)
                    await asyncio.sleep(delay)
            return await async_response(request)

        return middleware

    sync_response: Callable[[HttpRequest], HttpResponseBase] = get_response

    def sync_middleware(request: HttpRequest) -> HttpResponseBase:
        username = _signin_username(request)
        if username is not None:
            delay = _delay_for(username)
            if delay > 0:
                setattr(request, SLOWED_ATTRIBUTE, delay)
                time.sleep(delay)
        return sync_response(request)

    return sync_middleware
