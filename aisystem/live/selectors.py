"""Reads for the live feed. Each returns plain values (``event_payload`` dicts, ids), so the
async consumers and the relay never hold a lazy queryset."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.db.models import Max, Q

from aisystem.events import event_payload
from aisystem.live.access import access_live_feed
from aisystem.models import Event


def events_recent(*, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events, oldest first, as browsers receive them."""
    if limit <= 0:
        return []
    rows = list(Event.objects.order_by("-pk")[:limit])
    return [event_payload(row) for row in reversed(rows)]


def event_latest_id() -> int:
    """The highest event id stored so far (0 when there is none)."""
    return Event.objects.aggregate(top=Max("pk"))["top"] or 0


def events_after(*, after_id: int, also_ids: Sequence[int], limit: int) -> list[dict[str, Any]]:
    """Events with an id above ``after_id``, plus those of ``also_ids`` (ids the relay is still
    waiting for), in id order, at most ``limit``. One query on the primary key."""
    matches = Q(pk__gt=after_id)
    if also_ids:
        matches |= Q(pk__in=list(also_ids))
    rows = Event.objects.filter(matches).order_by("pk")[:limit]
    return [event_payload(row) for row in rows]


def session_still_staff(session_key: str | None, user_pk: Any) -> bool:
    """True while the session, re-read from its store, still signs in ``user_pk`` (Django's own
    checks: signed out, password changed) and that user may still watch (``access_live_feed``:
    active staff allowed to view messages). A socket outlives the page that opened it; this is
    how a signed-out, demoted or no longer permitted user stops receiving events."""
    if not session_key:
        return False
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = get_user(SimpleNamespace(session=fresh))  # type: ignore[arg-type]
    return str(user.pk) == str(user_pk) and access_live_feed(user).allowed
