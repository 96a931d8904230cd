"""The relay: every event, recorded by any process, reaches the browsers connected to this one.

Each web process runs one relay while at least one live-feed socket is open. It receives every
event once and fans each batch out to this process's sockets with one ``group_send`` on the
process-local ``"live"`` layer (``aisystem.live.layers``). Where it receives events from is
``settings.LIVE_FEED["SOURCE"]``:

* ``"database"`` (the embedded default, ``DatabaseRelay``): every process already stores its
  events in the ``Event`` table, so the relay asks the table for ids above the last it saw,
  one primary-key query every ``POLL_SECONDS``, however many browsers watch. No server needed.
* ``"channel_layer"`` (``REDIS_URL``, ``ChannelLayerRelay``): ``aisystem.events`` broadcasts
  after commit to ``LIVE_FEED_GROUP`` on the ``"events"`` layer (channels-redis's pub/sub
  layer); the relay is that group's only member in this process. Redis carries one message
  per ``events_record`` call per web process, not one per browser.

Ids and commit order (database source). On SQLite writers take turns, so ids become visible in
order. On PostgreSQL two transactions can commit out of order (id 9 after id 10); the
``RelayCursor`` remembers a skipped id for ``REORDER_WINDOW_SECONDS`` and asks for it again on
each poll, delivering it once, late, if it appears (ids also go missing for good, after a
rollback: those simply expire). Every id is delivered at most once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.db import connections

from aisystem.events import LIVE_FEED_GROUP, LIVE_FEED_LAYER, feed_message
from aisystem.live.config import live_feed_config
from aisystem.live.selectors import event_latest_id, events_after

logger = logging.getLogger(__name__)

LOCAL_LAYER = "live"  # the layer the sockets listen on, in this process only
BATCH = 500  # events per query; a longer backlog is read without pausing between queries
MAX_GAPS = 1000  # a bigger jump in ids is not a reordering (a sequence reset, say): not tracked
ERROR_PAUSE_SECONDS = 1.0
REJOIN_SECONDS = 60.0  # channel layers expire group membership (a day by default)
MIN_FAN_OUT_SECONDS = 0.02  # channel-layer source: at most one browser frame per 20 ms

T = TypeVar("T")


@dataclass
class RelayCursor:
    """Which events have been delivered, by id. No I/O: tests drive it with plain ids.

    ``last_id`` is the highest id delivered; ``gaps`` maps each lower id not yet seen to the
    monotonic time it was first missed.
    """

    last_id: int
    window_seconds: float
    gaps: dict[int, float] = field(default_factory=dict)

    def missing(self, now: float) -> list[int]:
        """The ids still worth asking for (drops those missed longer than the window)."""
        for gap_id, since in list(self.gaps.items()):
            if now - since > self.window_seconds:
                del self.gaps[gap_id]
        return sorted(self.gaps)

    def advance(self, ids: Iterable[int], now: float) -> list[int]:
        """Take the ids a query returned; return those to deliver (new ones, each once),
        in the order given. Ids skipped over become gaps when a window is set."""
        fresh: list[int] = []
        for event_id in ids:
            if event_id in self.gaps:
                del self.gaps[event_id]
            elif event_id > self.last_id:
                self._note_gaps(event_id, now)
                self.last_id = event_id
            else:
                continue  # delivered already, or given up on
            fresh.append(event_id)
        return fresh

    def _note_gaps(self, event_id: int, now: float) -> None:
        skipped = event_id - self.last_id - 1
        if self.window_seconds <= 0 or skipped <= 0 or skipped > MAX_GAPS:
            return
        for gap_id in range(self.last_id + 1, event_id):
            self.gaps[gap_id] = now
        while len(self.gaps) > MAX_GAPS:
            del self.gaps[min(self.gaps)]


async def fan_out(message: dict[str, Any]) -> None:
    """Send one ``feed_message`` to every live-feed socket of this process."""
    await get_channel_layer(LOCAL_LAYER).group_send(LIVE_FEED_GROUP, message)


class EventRelay:
    """The part both sources share: ``subscribe``/``unsubscribe`` count the sockets, and the
    receiving task (``_run``, per source) runs while the count is above zero."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._subscribers = 0
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def subscribe(self) -> None:
        """Count one more socket; start the relay if needed. Returns once every event stored
        from now on will be delivered (read the history after this, and drop history ids
        from live batches: an event may be in both)."""
        self._subscribers += 1
        if not self.running:
            ready = self._ready = self.loop.create_future()
            self._task = self.loop.create_task(self._run(ready), name="live-feed-relay")
            self._task.add_done_callback(partial(_relay_ended, ready))
        assert self._ready is not None
        await asyncio.shield(self._ready)

    async def unsubscribe(self) -> None:
        """Count one socket fewer; the last one out stops the relay."""
        self._subscribers = max(0, self._subscribers - 1)
        if self._subscribers == 0:
            await self.stop()

    async def stop(self) -> None:
        """Stop now (every socket counted so far is forgotten)."""
        self._subscribers = 0
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()  # nobody waits for a relay that no longer runs

    async def _run(self, ready: asyncio.Future[None]) -> None:
        raise NotImplementedError


def _relay_ended(ready: asyncio.Future[None], task: asyncio.Task[None]) -> None:
    """A relay only ends by being stopped; if it fails instead, the sockets waiting for it to
    start fail too (their pages reconnect, which starts a new relay)."""
    if task.cancelled() or task.exception() is None:
        return
    logger.error("live feed relay failed", exc_info=task.exception())
    if not ready.done():
        ready.set_exception(RuntimeError("the live feed relay failed"))


class DatabaseRelay(EventRelay):
    """Polls the ``Event`` table. Queries run on a thread of the relay's own, which keeps one
    database connection and stays off the thread that serves Django's sync views."""

    def __init__(self, *, poll_seconds: float, window_seconds: float) -> None:
        super().__init__()
        self.poll_seconds = poll_seconds
        self.window_seconds = window_seconds
        self._executor: ThreadPoolExecutor | None = None

    async def _call(self, function: Callable[..., T], **kwargs: Any) -> T:
        assert self._executor is not None
        return await self.loop.run_in_executor(self._executor, lambda: function(**kwargs))

    async def _run(self, ready: asyncio.Future[None]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-feed-relay")
        try:
            await self._poll_forever(ready)
        finally:
            # Queued behind any query still running: the thread's connection is closed.
            executor, self._executor = self._executor, None
            await asyncio.wrap_future(executor.submit(connections.close_all))
            executor.shutdown(wait=False)

    async def _poll_forever(self, ready: asyncio.Future[None]) -> None:
        """Poll on a fixed cadence (a poll's own time does not stretch the interval), at once
        again after a full batch, and after a pause when the database fails."""
        cursor: RelayCursor | None = None
        due = time.monotonic()
        while True:
            try:
                if cursor is None:
                    cursor = RelayCursor(await self._call(event_latest_id), self.window_seconds)
                    ready.set_result(None)
                full = await self.poll(cursor)
            except Exception:
                # The database may be busy or restarting: pause, reconnect, go on.
                logger.warning("live feed relay: poll failed", exc_info=True)
                await self._call(connections.close_all)
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            now = time.monotonic()
            due = now if full else max(due + self.poll_seconds, now)
            await asyncio.sleep(due - now)

    async def poll(self, cursor: RelayCursor) -> bool:
        """One query, one fan-out of what is new. True when the batch was full (more may be
        waiting)."""
        rows = await self._call(
            events_after,
            after_id=cursor.last_id,
            also_ids=cursor.missing(time.monotonic()),
            limit=BATCH,
        )
        fresh = set(cursor.advance((row["id"] for row in rows), time.monotonic()))
        payloads: Sequence[dict[str, Any]] = [row for row in rows if row["id"] in fresh]
        if payloads:
            await fan_out(feed_message(payloads))
        return len(rows) >= BATCH


class ChannelLayerRelay(EventRelay):
    """Joins ``LIVE_FEED_GROUP`` on the ``LIVE_FEED_LAYER`` (channels-redis pub/sub: one
    subscription per process) and passes what arrives on to this process's sockets. Batches
    that arrive within ``MIN_FAN_OUT_SECONDS`` of the last fan-out wait and go out together:
    every browser frame costs the web process CPU, so under load frames carry more events
    instead of coming faster."""

    async def _run(self, ready: asyncio.Future[None]) -> None:
        layer = get_channel_layer(LIVE_FEED_LAYER)
        channel = await _retrying(lambda: layer.new_channel(prefix="live-feed-relay."))
        pending: list[dict[str, Any]] = []
        arrived = asyncio.Event()
        await _retrying(lambda: layer.group_add(LIVE_FEED_GROUP, channel))
        ready.set_result(None)
        receiver = asyncio.create_task(_receive_into(layer, channel, pending, arrived))
        try:
            while True:
                try:
                    await asyncio.wait_for(arrived.wait(), REJOIN_SECONDS)
                except TimeoutError:  # quiet: renew the membership (some layers expire it)
                    await _retrying(lambda: layer.group_add(LIVE_FEED_GROUP, channel))
                    continue
                arrived.clear()
                batch = pending[:]
                pending.clear()
                await fan_out(merge_feed_messages(batch))
                await asyncio.sleep(MIN_FAN_OUT_SECONDS)
        finally:
            receiver.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(layer.group_discard(LIVE_FEED_GROUP, channel))


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, again after a pause while the shared layer is unreachable."""
    while True:
        try:
            return await call()
        except Exception:
            logger.warning("live feed relay: the channel layer failed", exc_info=True)
            await asyncio.sleep(ERROR_PAUSE_SECONDS)


async def _receive_into(
    layer: Any, channel: str, pending: list[dict[str, Any]], arrived: asyncio.Event
) -> None:
    """Append each ``feed.events`` message from ``channel`` to ``pending``, forever."""
    while True:
        try:
            message = await layer.receive(channel)
        except Exception:
            # The shared layer may be restarting: pause and go on (it reconnects itself).
            logger.warning("live feed relay: receiving failed", exc_info=True)
            await asyncio.sleep(ERROR_PAUSE_SECONDS)
            continue
        if message.get("type") == "feed.events":
            pending.append(message)
            arrived.set()


def merge_feed_messages(messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One ``feed_message`` carrying the events of ``messages``, in the order given."""
    if len(messages) == 1:
        return messages[0]
    events = [event for m in messages for event in json.loads(m["text"])["events"]]
    return feed_message(events)


_relay: EventRelay | None = None


def this_process_relay() -> EventRelay:
    """The relay of the running event loop (a new loop, as in tests, gets a new relay)."""
    global _relay
    loop = asyncio.get_running_loop()
    if _relay is None or _relay.loop is not loop:
        _relay = _make_relay()
    return _relay


def _make_relay() -> EventRelay:
    config = live_feed_config()
    if config.source == "channel_layer":
        return ChannelLayerRelay()
    return DatabaseRelay(
        poll_seconds=config.poll_seconds, window_seconds=config.reorder_window_seconds
    )


async def relay_shutdown() -> None:
    """Stop this loop's relay whatever its count (server shutdown, the end of a test)."""
    global _relay
    relay, _relay = _relay, None
    if relay is not None and relay.loop is asyncio.get_running_loop():
        await relay.stop()
