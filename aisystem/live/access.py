"""Who may watch the live feed: active staff, nobody else.

The page (``views``) and the socket (``consumers``) both ask ``access_live_feed``; the close
codes tell the browser what to do (4401: sign in; 4403: this account may not watch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLOSE_SIGN_IN = 4401
CLOSE_FORBIDDEN = 4403


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
    return LiveFeedAccess(True)
