"""The channel layer that fans the live feed out inside one web process (alias ``"live"``).

Each web process runs one relay (``aisystem.live.relay``) that receives every event once and
``group_send``s it to this process's live-feed sockets on this layer. Channels' in-memory layer
does that correctly but slowly for many members: per member it deep-copies the message, starts
a task, and on every ``receive`` it walks every channel to expire old messages. With 200
browsers that is 40 000 steps per batch. This layer keeps the semantics and drops the cost:

* messages are shared, not copied: senders and consumers treat them as read-only (the live
  feed's carry an already-encoded JSON string);
* ``group_send`` puts into each member's queue directly, without a task per member;
* a queue is made when a channel needs one, not on every ``send`` and ``receive``;
* expiry runs at most once per ``CLEAN_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import channels_redis.core
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEAN_INTERVAL_SECONDS = 1.0


class LocalFanoutLayer(InMemoryChannelLayer):  # type: ignore[misc]  # channels is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = 0.0

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Queue ``message`` itself (no copy); raises ``ChannelFull`` at capacity."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        queue = self._queue(channel)
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message on ``channel`` (the parent builds a new queue on every call)."""
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        finally:
            if queue.empty():
                self.channels.pop(channel, None)
        return message

    def _queue(self, channel: str) -> asyncio.Queue[tuple[float, dict[str, Any]]]:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue  # type: ignore[no-any-return]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Deliver to every member now; a member whose queue is full misses this message."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < CLEAN_INTERVAL_SECONDS:
            return
        self._cleaned_at = now
        super()._clean_expired()


class RedisChannelLayer(channels_redis.core.RedisChannelLayer):  # type: ignore[misc]
    """channels-redis's layer (the ``"default"`` alias with ``REDIS_URL``), minus a zombie.

    On Python 3.11, a cancellation that lands while redis-py is connecting can be lost inside
    ``asyncio.wait_for``; the receive loop of a closed socket then polls Redis (BZPOPMIN, 5 s
    at a time) forever, and an event loop shutting down waits for it forever. The task still
    says it is being cancelled, so each poll first checks that and stops. (Settings also give
    the connection a socket timeout above the 5 s poll: redis-py's default of exactly 5 s cut
    every idle consumer off with "Timeout reading".)
    """

    async def _brpop_with_clean(self, index: int, channel: str, timeout: float) -> Any:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return await super()._brpop_with_clean(index, channel, timeout)
