"""Who may watch the live feed: active staff allowed to view messages, nobody else.

The feed shows every conversation as it happens, so it asks for what the admin asks before it
shows a message: the ``aisystem.view_message`` permission (superusers have every permission).
Staff status alone only lets someone into the admin, where each page then checks its own
permission; the feed is held to the same rule as the admin home's summary.

The page (``views``) and the socket (``consumers``) both ask ``access_live_feed``, and so does
the socket's periodic re-check (``selectors.session_still_staff``), so a revoked permission
closes an open socket too. The close codes tell the browser what to do (4401: sign in; 4403:
this account may not watch).

``access_live_feed`` may read the database (the user's and their groups' permissions): async
callers run it through ``database_sync_to_async``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLOSE_SIGN_IN = 4401
CLOSE_FORBIDDEN = 4403
VIEW_PERMISSION = "aisystem.view_message"


@dataclass(frozen=True)
class LiveFeedAccess:
    """``allowed`` True means the user may receive every event; otherwise ``close_code`` is
    what the socket closes with and ``reason`` says why (for logs, not for the browser)."""

    allowed: bool
    close_code: int = 0
    reason: str = ""


def access_live_feed(user: Any) -> LiveFeedAccess:
    """Decide for ``user`` (a Django user, ``AnonymousUser`` or None)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return LiveFeedAccess(False, CLOSE_SIGN_IN, "anonymous")
    if not user.is_active:
        return LiveFeedAccess(False, CLOSE_SIGN_IN, "inactive")
    if not user.is_staff:
        return LiveFeedAccess(False, CLOSE_FORBIDDEN, "not_staff")
    if not user.has_perm(VIEW_PERMISSION):
        return LiveFeedAccess(False, CLOSE_FORBIDDEN, "no_view_permission")
    return LiveFeedAccess(True)
