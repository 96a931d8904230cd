"""ShutdownController with real signals sent to this process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import pytest

from telegram_bridge.shutdown import ShutdownController


async def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_first_signal_starts_a_graceful_stop(sig: signal.Signals) -> None:
    exits: list[int] = []
    with ShutdownController(force_exit=exits.append) as shutdown:
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(shutdown.stopping.wait(), 5)

    assert shutdown.received == [sig]
    assert exits == []


async def test_a_second_signal_exits_at_once_with_the_signal_status() -> None:
    exits: list[int] = []
    with ShutdownController(force_exit=exits.append) as shutdown:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(shutdown.stopping.wait(), 5)
        os.kill(os.getpid(), signal.SIGINT)
        await wait_until(lambda: exits)

    assert exits == [128 + signal.SIGINT]
    assert shutdown.received == [signal.SIGTERM, signal.SIGINT]


async def test_a_signal_during_a_requested_stop_is_still_graceful() -> None:
    exits: list[int] = []
    with ShutdownController(force_exit=exits.append) as shutdown:
        shutdown.request_stop("session revoked")
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(lambda: shutdown.received)

    assert shutdown.stopping.is_set()
    assert exits == []


async def test_restore_puts_back_the_previous_handlers() -> None:
    def previous(signum: int, frame: object) -> None:
        raise AssertionError("not expected to run")

    original = signal.signal(signal.SIGTERM, previous)
    sigint_before = signal.getsignal(signal.SIGINT)
    try:
        shutdown = ShutdownController(force_exit=lambda code: None)
        shutdown.install()
        assert signal.getsignal(signal.SIGTERM) is not previous
        shutdown.restore()
        shutdown.restore()  # idempotent

        assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.getsignal(signal.SIGINT) == sigint_before
        assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_installing_twice_is_refused() -> None:
    with ShutdownController() as shutdown, pytest.raises(RuntimeError, match="already"):
        shutdown.install()


def test_installing_outside_a_running_loop_is_refused() -> None:
    with pytest.raises(RuntimeError):
        ShutdownController().install()
