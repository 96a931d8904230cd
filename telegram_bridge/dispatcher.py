"""Runs incoming-update jobs: chats concurrently, each chat's jobs in arrival order.

``ChatDispatcher`` is transport-neutral: a job is any ``Callable[[], Awaitable[None]]`` and a
chat key any string. Its guarantees:

* **Order per chat.** A chat's jobs run one after another, in the order ``submit`` was
  called. Different chats run concurrently.
* **Bounded concurrency.** At most ``max_concurrency`` ordered jobs run at once (a semaphore
  taken per job, so a chat waiting for a slot holds none).
* **Backpressure.** ``submit`` waits while ``max_pending`` jobs are queued (submitted, not yet
  started), so a fast update reader slows down instead of growing memory without bound.
* **Isolation.** A job that raises is logged; the chat's later jobs still run.
* **No idle tasks.** A chat's worker task exists only while the chat has queued or running
  jobs; it ends as soon as the queue is empty.
* **Fast path.** ``submit(..., bypass_order=True)`` starts the job at once, outside the chat's
  order, the concurrency bound and the backpressure (for /cancel and the Stop button, which
  must not wait behind the reply they stop).
* **Drain.** ``drain(deadline)`` refuses new jobs, lets running and queued ones finish until
  the deadline, cancels what is left and reports the chats concerned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from telegram_bridge.config import BridgeConfig

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]

# How long cancelled jobs get to unwind after the drain deadline before drain() returns anyway
# (a job that swallows CancelledError must not hold up the shutdown).
CANCEL_GRACE_SECONDS = 2.0


class DispatcherClosed(RuntimeError):
    """``submit`` was called after ``drain`` started: the bridge is shutting down."""


class ChatDispatcher:
    """Per-chat ordered, bounded, back-pressured job runner (see the module docstring).

    Limits left out come from ``BridgeConfig`` (``settings.TELEGRAM_BRIDGE``: MAX_CONCURRENCY,
    default 16, and MAX_PENDING, default 1000). Use it from one event loop.
    """

    def __init__(self, *, max_concurrency: int | None = None, max_pending: int | None = None):
        if max_concurrency is None or max_pending is None:
            config = BridgeConfig.from_settings()
            if max_concurrency is None:
                max_concurrency = config.max_concurrency
            if max_pending is None:
                max_pending = config.max_pending
        self.max_concurrency = max_concurrency
        self.max_pending = max_pending
        if self.max_concurrency < 1 or self.max_pending < 1:
            raise ValueError("max_concurrency and max_pending must be at least 1")
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._queues: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._running: set[str] = set()  # chats with an ordered job running now
        self._bypass: dict[asyncio.Task[None], str] = {}
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs submitted in order and not yet started."""
        return self._pending

    @property
    def in_flight(self) -> int:
        """Jobs running now, fast-path ones included."""
        return len(self._running) + len(self._bypass)

    @property
    def active_chats(self) -> int:
        """Chats with a worker task (queued or running jobs)."""
        return len(self._workers)

    @property
    def closed(self) -> bool:
        return self._closed

    async def submit(self, chat_key: str, job: Job, *, bypass_order: bool = False) -> None:
        """Queue ``job`` after the chat's earlier jobs (or start it now with ``bypass_order``).

        Waits while ``max_pending`` jobs are queued. Raises ``DispatcherClosed`` once
        ``drain`` has started, also for a call that was waiting for room.
        """
        self._ensure_open()
        if bypass_order:
            self._start_bypass(chat_key, job)
            return
        while self._pending >= self.max_pending:
            self._room.clear()
            await self._room.wait()
            self._ensure_open()
        self._queues.setdefault(chat_key, deque()).append(job)
        self._pending += 1
        if chat_key not in self._workers:
            self._workers[chat_key] = asyncio.create_task(
                self._work(chat_key), name=f"chat-worker:{chat_key}"
            )

    async def drain(self, deadline_seconds: float) -> list[str]:
        """Stop accepting jobs; wait up to ``deadline_seconds`` for running and queued ones.

        Jobs still running at the deadline are cancelled and queued ones dropped. Returns the
        sorted keys of the chats whose jobs did not all finish ([] when everything finished).
        """
        self._closed = True
        self._room.set()  # wake blocked submitters so they raise DispatcherClosed
        tasks = [*self._workers.values(), *self._bypass]
        if tasks:
            await asyncio.wait(tasks, timeout=max(deadline_seconds, 0))
        unfinished = sorted(
            {key for key, queue in self._queues.items() if queue}
            | self._running
            | set(self._bypass.values())
        )
        leftover = [task for task in tasks if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.wait(leftover, timeout=CANCEL_GRACE_SECONDS)
        for queue in self._queues.values():
            queue.clear()  # a job that ignored its cancellation finds nothing more to run
        self._queues.clear()
        self._pending = 0
        if unfinished:
            logger.warning("drain deadline passed; unfinished chats: %s", ", ".join(unfinished))
        return unfinished

    def _ensure_open(self) -> None:
        if self._closed:
            raise DispatcherClosed("the dispatcher is draining; no new jobs")

    async def _work(self, chat_key: str) -> None:
        """Run the chat's queue to empty, then leave (no idle task per chat)."""
        queue = self._queues[chat_key]
        try:
            while queue:
                async with self._slots:
                    job = queue.popleft()
                    self._pending -= 1
                    if self._pending < self.max_pending:
                        self._room.set()
                    self._running.add(chat_key)
                    try:
                        await _run_logged(chat_key, job)
                    finally:
                        self._running.discard(chat_key)
            # No await between the empty check above and here: submit() cannot slip a job
            # into a queue whose worker is leaving.
            self._queues.pop(chat_key, None)
        finally:
            self._workers.pop(chat_key, None)

    def _start_bypass(self, chat_key: str, job: Job) -> None:
        task = asyncio.create_task(_run_logged(chat_key, job), name=f"chat-fast-path:{chat_key}")
        self._bypass[task] = chat_key
        task.add_done_callback(self._bypass_done)

    def _bypass_done(self, task: asyncio.Task[None]) -> None:
        self._bypass.pop(task, None)


async def _run_logged(chat_key: str, job: Job) -> None:
    """Run ``job``; an exception is logged and swallowed (cancellation is not)."""
    try:
        await job()
    except Exception:
        logger.exception("job for chat %s failed", chat_key)
