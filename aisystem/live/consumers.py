"""The live feed's socket, ``/ws/live/``: staff receive the recent events, then each new one.

Frames to the browser (JSON text):

* ``{"type": "history", "events": [...]}`` once, right after connecting: the newest
  ``LIVE_FEED["HISTORY"]`` events, oldest first;
* ``{"type": "events", "events": [...]}`` for each batch recorded after that;
* ``{"type": "pong"}`` in answer to ``{"type": "ping"}``.

Events are ``aisystem.events.event_payload`` dicts, nothing else (no secret is ever stored in
one). Anything else the browser sends is ignored. A visitor who may not watch (see
``access.access_live_feed``: active staff with ``aisystem.view_message``) is accepted and
closed at once with ``access.CLOSE_SIGN_IN`` (4401) or ``CLOSE_FORBIDDEN`` (4403): closing
before the handshake would show the browser only a generic failure, not a code to act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from aisystem.events import LIVE_FEED_GROUP
from aisystem.live.access import CLOSE_FORBIDDEN, access_live_feed
from aisystem.live.config import live_feed_config
from aisystem.live.relay import LOCAL_LAYER, this_process_relay
from aisystem.live.selectors import events_recent, session_still_staff
from aisystem.metrics.instruments import websocket_closed, websocket_opened

logger = logging.getLogger(__name__)

MAX_CLIENT_FRAME = 1024  # the browser only ever sends a ping
PONG = json.dumps({"type": "pong"})


class LiveFeedConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """One staff browser tab. Joins ``LIVE_FEED_GROUP`` on this process's ``"live"`` layer,
    holds the relay open while connected, and re-checks its user every
    ``LIVE_FEED["RECHECK_SECONDS"]``."""

    channel_layer_alias = LOCAL_LAYER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.history_ids: set[int] = set()
        self.subscribed = False
        self.recheck: asyncio.Task[None] | None = None
        self.counted = False  # in aisystem_websocket_connections

    async def connect(self) -> None:
        # The permission check may read the database (the user's permissions).
        access = await database_sync_to_async(access_live_feed)(self.scope.get("user"))
        await self.accept()
        if not access.allowed:
            logger.info("live feed refused", extra={"reason": access.reason})
            await self.close(code=access.close_code)
            return
        await self.channel_layer.group_add(LIVE_FEED_GROUP, self.channel_name)
        self.subscribed = True
        await this_process_relay().subscribe()
        history = await database_sync_to_async(events_recent)(limit=live_feed_config().history)
        self.history_ids = {event["id"] for event in history}
        await self.send(text_data=json.dumps({"type": "history", "events": history}))
        self.recheck = asyncio.create_task(self._recheck_loop())
        websocket_opened("live")
        self.counted = True

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self.counted = False
            websocket_closed("live")
        if self.recheck is not None:
            self.recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.recheck
        await self.channel_layer.group_discard(LIVE_FEED_GROUP, self.channel_name)
        if self.subscribed:
            self.subscribed = False
            await this_process_relay().unsubscribe()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer a ping; ignore everything else (binary, oversized, not JSON, unknown)."""
        if text_data is None or len(text_data) > MAX_CLIENT_FRAME:
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(text_data=PONG)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Feed batches skip channels' per-message ``close_old_connections`` thread hop: the
        handler touches no database, and with 200 browsers that hop is 200 round trips through
        one thread per batch. Everything else is dispatched as channels does."""
        if message["type"] == "feed.events":
            await self.feed_events(message)
        else:
            await super().dispatch(message)

    async def feed_events(self, message: dict[str, Any]) -> None:
        """A batch from this process's relay: pass the encoded frame on, minus any event the
        history already gave this browser."""
        if self.history_ids.isdisjoint(message["ids"]):
            await self.send(text_data=message["text"])
            return
        frame = json.loads(message["text"])
        frame["events"] = [e for e in frame["events"] if e["id"] not in self.history_ids]
        if frame["events"]:
            await self.send(text_data=json.dumps(frame))

    async def _recheck_loop(self) -> None:
        """Close with 4403 once the session is signed out or the user is no longer staff.
        Re-joining the group also keeps the membership from expiring (channels drops
        members after ``group_expiry``, a day by default)."""
        user = self.scope.get("user")
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        while True:
            await asyncio.sleep(live_feed_config().recheck_seconds)
            try:
                still = await database_sync_to_async(session_still_staff)(
                    session_key, getattr(user, "pk", None)
                )
            except Exception:  # the database is busy or away: keep the socket, ask again later
                logger.warning("live feed: could not re-check the user", exc_info=True)
                continue
            if not still:
                await self.close(code=CLOSE_FORBIDDEN)
                return
            await self.channel_layer.group_add(LIVE_FEED_GROUP, self.channel_name)
