"""Who may read ``/metrics``: a REST API token, or a signed-in active staff member.

The figures show how busy the system is and what it spends, never a message or a secret, so
any usable API token may read them (a Prometheus server is configured with one), as may staff
from the browser. Refusals:

* 401: no credentials (no ``Authorization`` header and nobody signed in), or an
  ``Authorization`` header that is not a usable ``Bearer`` token. A header that was sent is
  the credential that counts: a bad token is refused even beside a staff session;
* 403: someone signed in who is not active staff (signing in again cannot help).

``access_metrics`` reads the database (the token): call it from sync code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aisystem.services.tokens import api_token_authenticate


@dataclass(frozen=True)
class MetricsAccess:
    """``allowed``, or else the HTTP ``status`` to answer and the ``reason`` (for logs)."""

    allowed: bool
    status: int = 200
    reason: str = ""


def access_metrics(*, authorization: str | None, user: Any) -> MetricsAccess:
    """Decide for a request's ``Authorization`` header (None when absent) and its ``user``
    (a Django user, ``AnonymousUser`` or None)."""
    if authorization is not None:
        return _by_token(authorization)
    if user is None or not getattr(user, "is_authenticated", False):
        return MetricsAccess(False, 401, "anonymous")
    if not user.is_active:
        return MetricsAccess(False, 403, "inactive")
    if not user.is_staff:
        return MetricsAccess(False, 403, "not_staff")
    return MetricsAccess(True)


def _by_token(authorization: str) -> MetricsAccess:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return MetricsAccess(False, 401, "not_bearer")
    if not token.strip():
        return MetricsAccess(False, 401, "empty_token")
    if api_token_authenticate(token.strip()) is None:
        return MetricsAccess(False, 401, "unknown_token")
    return MetricsAccess(True)
