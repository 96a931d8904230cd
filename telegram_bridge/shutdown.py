"""Graceful shutdown on SIGTERM/SIGINT, and an immediate exit on the second signal.

The first signal sets ``stopping``; the bridge then stops intake, drains in-flight work up
to its deadline, marks the rest interrupted and exits 0. A second signal means the operator
will not wait: ``force_exit(128 + signal number)`` runs (130 for Ctrl-C, 143 for SIGTERM,
the shell's convention for "killed by a signal").

The default ``force_exit`` is ``os._exit``, not ``SystemExit``: raised from a signal
callback, ``SystemExit`` unwinds through ``asyncio.run``, which cancels every task and then
waits for them and for the default executor's threads, the very things that are stuck when
someone presses Ctrl-C twice. ``os._exit`` skips ``atexit`` handlers and buffered output,
so standard streams are flushed first. Work lost this way is recovered at the next start
(interrupted messages resume, stale outbox items are requeued).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream must not stop the exit
            stream.flush()
    os._exit(code)


class ShutdownController:
    """Turns SIGTERM/SIGINT into ``stopping`` (first) and ``force_exit`` (second).

    ``install()`` must be called from inside the running event loop (it uses
    ``loop.add_signal_handler``, Unix only); ``restore()`` puts the previous handlers back.
    Also usable as a context manager (``with ShutdownController() as shutdown:``).
    """

    def __init__(
        self,
        *,
        force_exit: Callable[[int], Any] = _exit_now,
        signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
    ) -> None:
        self.stopping = asyncio.Event()
        self.force_exit = force_exit
        self.signals = tuple(signals)
        self.received: list[signal.Signals] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        """Handle ``signals`` on the running loop from now on. Raises RuntimeError outside a
        running loop or when already installed."""
        if self._loop is not None:
            raise RuntimeError("the shutdown handlers are already installed")
        loop = asyncio.get_running_loop()
        for sig in self.signals:
            self._previous[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._loop = loop

    def restore(self) -> None:
        """Remove the handlers and put back the ones found at ``install``. Idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for sig in self.signals:
            loop.remove_signal_handler(sig)
            previous = self._previous.pop(sig, None)
            if previous is not None:
                signal.signal(sig, previous)

    def request_stop(self, reason: str = "requested") -> None:
        """Begin a graceful stop without a signal (a revoked session, a fatal error)."""
        if not self.stopping.is_set():
            logger.info("stopping: %s", reason)
            self.stopping.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        self.received.append(sig)
        if len(self.received) == 1:
            logger.warning(
                "received %s: finishing in-flight messages, then exiting "
                "(send it again to exit at once)",
                sig.name,
            )
            self.stopping.set()
            return
        logger.warning("received %s again: exiting at once", sig.name)
        self.force_exit(128 + int(sig))

    def __enter__(self) -> ShutdownController:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()
