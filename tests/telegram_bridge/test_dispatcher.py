"""ChatDispatcher: order per chat, bounded concurrency, backpressure, drain, fast path."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from typing import Any

import pytest

from telegram_bridge.dispatcher import ChatDispatcher, DispatcherClosed, Job


async def settle() -> None:
    """Let every ready task run until none is ready (a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


def gate_job(log: list[str], label: str, gate: asyncio.Event) -> Job:
    async def job() -> None:
        log.append(f"start {label}")
        await gate.wait()
        log.append(f"end {label}")

    return job


async def test_it_handles_each_chats_messages_in_arrival_order_under_concurrency() -> None:
    dispatcher = ChatDispatcher(max_concurrency=8, max_pending=1000)
    rng = random.Random(4)
    seen: dict[str, list[int]] = defaultdict(list)
    chats = [f"chat-{n}" for n in range(40)]

    def job_for(chat: str, number: int) -> Job:
        async def job() -> None:
            await asyncio.sleep(rng.random() / 1000)
            seen[chat].append(number)

        return job

    expected: dict[str, list[int]] = defaultdict(list)
    for number in range(800):
        chat = rng.choice(chats)
        expected[chat].append(number)
        await dispatcher.submit(chat, job_for(chat, number))

    assert await dispatcher.drain(10) == []
    assert seen == expected


async def test_it_never_runs_more_jobs_at_once_than_the_bound() -> None:
    dispatcher = ChatDispatcher(max_concurrency=3, max_pending=1000)
    running = 0
    most = 0

    async def job() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(random.random() / 500)
        running -= 1

    for number in range(200):
        await dispatcher.submit(f"chat-{number % 50}", job)
    await dispatcher.drain(10)

    assert most == 3


async def test_one_chat_runs_one_job_at_a_time_even_with_free_slots() -> None:
    dispatcher = ChatDispatcher(max_concurrency=10)
    log: list[str] = []
    gate = asyncio.Event()
    await dispatcher.submit("chat", gate_job(log, "first", gate))
    await dispatcher.submit("chat", gate_job(log, "second", gate))
    await settle()

    assert log == ["start first"]
    assert dispatcher.in_flight == 1
    assert dispatcher.pending == 1

    gate.set()
    await dispatcher.drain(5)
    assert log == ["start first", "end first", "start second", "end second"]


async def test_submit_waits_when_too_many_jobs_are_queued() -> None:
    dispatcher = ChatDispatcher(max_concurrency=1, max_pending=2)
    log: list[str] = []
    gate = asyncio.Event()
    for label in ("running", "queued-1", "queued-2"):
        await dispatcher.submit("chat", gate_job(log, label, gate))
        await settle()
    assert dispatcher.pending == 2

    blocked = asyncio.create_task(dispatcher.submit("chat", gate_job(log, "fourth", gate)))
    await settle()
    assert not blocked.done()
    assert dispatcher.pending == 2

    gate.set()
    await asyncio.wait_for(blocked, 5)
    await dispatcher.drain(5)
    assert log[-1] == "end fourth"


async def test_a_submit_waiting_for_room_is_refused_when_the_drain_starts() -> None:
    dispatcher = ChatDispatcher(max_concurrency=1, max_pending=1)
    gate = asyncio.Event()
    log: list[str] = []
    await dispatcher.submit("chat", gate_job(log, "running", gate))
    await settle()
    await dispatcher.submit("chat", gate_job(log, "queued", gate))
    blocked = asyncio.create_task(dispatcher.submit("chat", gate_job(log, "late", gate)))
    await settle()

    drain = asyncio.create_task(dispatcher.drain(5))
    await settle()
    gate.set()

    with pytest.raises(DispatcherClosed):
        await blocked
    assert await drain == []
    assert "start late" not in log


async def test_a_failing_job_is_logged_and_the_chats_next_job_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = ChatDispatcher()
    done: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        done.append("fine")

    with caplog.at_level(logging.ERROR, logger="telegram_bridge.dispatcher"):
        await dispatcher.submit("chat", broken)
        await dispatcher.submit("chat", fine)
        await dispatcher.drain(5)

    assert done == ["fine"]
    assert "job for chat chat failed" in caplog.text
    assert "boom" in caplog.text


async def test_a_chats_worker_goes_away_when_its_queue_is_empty() -> None:
    dispatcher = ChatDispatcher(max_concurrency=16)
    done = 0

    async def job() -> None:
        nonlocal done
        done += 1

    for number in range(1000):
        await dispatcher.submit(f"chat-{number}", job)
    assert dispatcher.active_chats == 1000

    for _ in range(200):
        if done == 1000 and dispatcher.active_chats == 0:
            break
        await asyncio.sleep(0.01)

    assert done == 1000
    assert dispatcher.active_chats == 0
    assert dispatcher.pending == 0
    assert dispatcher.in_flight == 0
    worker_tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("chat-worker:")]
    assert worker_tasks == []


async def test_a_chat_that_went_idle_gets_a_new_worker_for_its_next_message() -> None:
    dispatcher = ChatDispatcher()
    done: list[int] = []

    async def job() -> None:
        done.append(len(done))

    await dispatcher.submit("chat", job)
    await settle()
    assert dispatcher.active_chats == 0

    await dispatcher.submit("chat", job)
    await dispatcher.drain(5)
    assert done == [0, 1]


async def test_drain_lets_running_and_queued_jobs_finish_before_the_deadline() -> None:
    dispatcher = ChatDispatcher(max_concurrency=1)
    finished: list[str] = []

    def job_for(label: str) -> Job:
        async def job() -> None:
            await asyncio.sleep(0.01)
            finished.append(label)

        return job

    for label in ("a1", "a2", "b1"):
        await dispatcher.submit(label[0], job_for(label))

    assert await dispatcher.drain(5) == []
    assert sorted(finished) == ["a1", "a2", "b1"]
    with pytest.raises(DispatcherClosed):
        await dispatcher.submit("a", job_for("a3"))


async def test_drain_cancels_jobs_at_the_deadline_and_reports_their_chats() -> None:
    dispatcher = ChatDispatcher(max_concurrency=3)
    cancelled: list[str] = []
    finished: list[str] = []

    def slow(label: str) -> Job:
        async def job() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(label)
                raise

        return job

    async def quick() -> None:
        finished.append("quick")

    await dispatcher.submit("stuck", slow("stuck"))
    await dispatcher.submit("stuck", quick)  # queued behind the stuck job: never runs
    await dispatcher.submit("waiting", slow("waiting"))
    await dispatcher.submit("fine", quick)
    await settle()

    unfinished = await dispatcher.drain(0.05)

    assert unfinished == ["stuck", "waiting"]
    assert sorted(cancelled) == ["stuck", "waiting"]
    assert finished == ["quick"]  # only the "fine" chat's
    assert dispatcher.in_flight == 0
    assert dispatcher.pending == 0


async def test_a_bypass_job_runs_at_once_past_the_message_it_cancels() -> None:
    dispatcher = ChatDispatcher(max_concurrency=1)
    log: list[str] = []
    reply_may_end = asyncio.Event()

    async def cancel() -> None:
        log.append("cancel")
        reply_may_end.set()

    await dispatcher.submit("chat", gate_job(log, "long reply", reply_may_end))
    await dispatcher.submit("other", gate_job(log, "other chat", reply_may_end))
    await settle()
    await dispatcher.submit("chat", cancel, bypass_order=True)

    assert await dispatcher.drain(5) == []
    assert log[:3] == ["start long reply", "cancel", "end long reply"]
    assert "end other chat" in log


async def test_a_running_bypass_job_counts_as_in_flight_and_is_drained() -> None:
    dispatcher = ChatDispatcher()
    gate = asyncio.Event()
    log: list[str] = []
    await dispatcher.submit("chat", gate_job(log, "stop", gate), bypass_order=True)
    await settle()
    assert dispatcher.in_flight == 1
    assert dispatcher.pending == 0

    assert await dispatcher.drain(0.01) == ["chat"]
    assert log == ["start stop"]
    assert dispatcher.in_flight == 0


async def test_limits_default_to_the_bridge_settings(settings: Any) -> None:
    settings.TELEGRAM_BRIDGE = {**settings.TELEGRAM_BRIDGE, "MAX_CONCURRENCY": 4, "MAX_PENDING": 9}
    dispatcher = ChatDispatcher()
    assert (dispatcher.max_concurrency, dispatcher.max_pending) == (4, 9)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ChatDispatcher(max_concurrency=0)


async def test_drain_reports_chats_whose_jobs_never_got_a_slot() -> None:
    dispatcher = ChatDispatcher(max_concurrency=1)
    gate = asyncio.Event()
    log: list[str] = []
    await dispatcher.submit("busy", gate_job(log, "busy", gate))
    await dispatcher.submit("starved", gate_job(log, "starved", gate))
    await settle()

    assert await dispatcher.drain(0.01) == ["busy", "starved"]
    assert log == ["start busy"]


async def test_a_job_that_ignores_cancellation_does_not_hold_up_the_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("telegram_bridge.dispatcher.CANCEL_GRACE_SECONDS", 0.05)
    dispatcher = ChatDispatcher()
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    await dispatcher.submit("stubborn", stubborn)
    await dispatcher.submit("stubborn", stubborn)
    await settle()

    assert await asyncio.wait_for(dispatcher.drain(0.01), 5) == ["stubborn"]
    release.set()
    await settle()
    assert dispatcher.active_chats == 0
