"""``GET /api/v1/health``: is each part of the system working? No secrets, only states.

HTTP 200 while the database answers (the system can take messages, maybe deferring them);
503 when it does not. ``status`` is "ok" when everything is, "degraded" otherwise.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Status

from aisystem.api.schemas import HealthOut
from aisystem.models import TelegramSession
from pipeline.claude.client import claude_status

router = Router(tags=["health"])
BRIDGE_STALE_AFTER = timedelta(seconds=90)


def _part(ok: bool, detail: str) -> dict[str, Any]:
    return {"ok": ok, "detail": detail}


def _database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return _part(False, f"unreachable ({type(error).__name__})")
    return _part(True, f"{connection.vendor}, {(time.perf_counter() - started) * 1000:.1f} ms")


async def _channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        return _part(False, "not configured")
    name = type(layer).__name__
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.ping"})
        await asyncio.wait_for(layer.receive(channel), timeout=2)
    except Exception as error:
        return _part(False, f"{name}: {type(error).__name__}")
    return _part(True, name)


def _claude_and_credentials() -> tuple[dict[str, Any], dict[str, Any]]:
    status = claude_status()
    breaker = _part(status.breaker_state == "closed", f"circuit breaker {status.breaker_state}")
    usable = status.usable_credentials + (1 if status.fallback_key_configured else 0)
    detail = (
        f"{status.usable_credentials} usable, {status.cooling_down} cooling down, "
        f"{status.invalid} invalid"
        + (", ANTHROPIC_API_KEY set" if status.fallback_key_configured else "")
    )
    return breaker, _part(usable > 0, detail)


def _bridge() -> dict[str, Any]:
    sessions = list(
        TelegramSession.objects.filter(is_enabled=True).only("name", "state", "heartbeat_at")
    )
    if not sessions:
        return _part(True, "not configured")
    now = timezone.now()
    details, ok = [], True
    for session in sessions:
        fresh = session.heartbeat_at is not None and now - session.heartbeat_at < BRIDGE_STALE_AFTER
        connected = session.state == TelegramSession.State.CONNECTED and fresh
        ok = ok and connected
        details.append(f"{session.name}: {session.state}" + ("" if fresh else " (no heartbeat)"))
    return _part(ok, "; ".join(details))


def _sync_parts() -> dict[str, Any]:
    database = _database()
    if not database["ok"]:
        down = _part(False, "unknown: the database is unreachable")
        return {"database": database, "claude": down, "credentials": down, "bridge": down}
    claude, credentials = _claude_and_credentials()
    return {"database": database, "claude": claude, "credentials": credentials, "bridge": _bridge()}


@router.get(
    "/health",
    response={200: HealthOut, 503: HealthOut},
    summary="The health of the database, channel layer, Claude, credentials and bridge",
)
async def health(request: HttpRequest) -> Any:
    parts = await sync_to_async(_sync_parts)()
    parts["channel_layer"] = await _channel_layer()
    if not parts["database"]["ok"]:
        return Status(503, {"status": "down", **parts})
    everything = all(part["ok"] for part in parts.values())
    return Status(200, {"status": "ok" if everything else "degraded", **parts})
