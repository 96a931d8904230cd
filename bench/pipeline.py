"""Benchmark: text messages through the whole pipeline against a floor, on SQLite.

Run: .venv/bin/python bench/pipeline.py [--messages 1000] [--concurrency 1 50] [--profile 200]

The gateway side runs in this process on a fresh SQLite database in a temporary directory
(DATABASE_URL and REDIS_URL are ignored, so the developer's data is never touched). Claude is
``FakeClaude`` on loopback with its default scenario, an echo with no model latency, in a
child process of its own so that its CPU is not counted against the gateway's.

For each concurrency, after a warm-up that is not counted:
- floor: what any gateway must do per message: insert the inbound Message row, one raw
  ``AsyncAnthropic`` streaming call, insert the outbound Message row;
- pipeline: ``UnifiedMessageProcessor.process_message`` with a transport that does nothing.
Messages go round-robin over ``--chats`` private chats, one sender each. Figures are p50/p99
of end-to-end latency, messages per second (wall clock), this process's CPU time per message
(with the GIL, one process cannot go faster than one message per that), the pipeline's overhead
over the floor (difference of the p50s), the ratio between the two, and the median of each
step the processor times itself. ``--profile N`` then runs N more messages one at a time and
prints the SQL they issued (grouped, per message) and the project functions where the time
went, in the event loop's thread and in the thread that runs every ORM call. Nothing is
asserted: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KEY, ROOT, NullTransport, verdict, with_fake_claude

if TYPE_CHECKING:  # the real imports wait for django.setup()
    from pipeline.types import InboundMessage

STEPS = ("gate", "context", "route", "agent", "delivery", "record", "total")
TARGET_OVERHEAD_MS = 15.0
TARGET_RATE = 200.0
TARGET_RATIO = 2.0

_ids = itertools.count(1)


@dataclass
class Run:
    latencies_ms: list[float]
    elapsed_s: float
    cpu_s: float  # this process, every thread
    timings: list[Mapping[str, float]]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        if len(self.latencies_ms) < 2:
            return max(self.latencies_ms)
        return statistics.quantiles(self.latencies_ms, n=100)[98]

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / len(self.latencies_ms)


async def load(
    call: Callable[[int], Awaitable[Mapping[str, float] | None]], messages: int, concurrency: int
) -> Run:
    """``messages`` calls of ``call(i)`` from ``concurrency`` workers; each call's latency."""
    todo = iter(range(messages))
    latencies: list[float] = []
    timings: list[Mapping[str, float]] = []

    async def worker() -> None:
        for i in todo:
            start = time.perf_counter()
            steps = await call(i)
            latencies.append((time.perf_counter() - start) * 1000)
            if steps is not None:
                timings.append(steps)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(latencies, time.perf_counter() - start, time.process_time() - cpu, timings)


class Bench:
    """The two ways through: the floor (its own chats) and the processor, against one fake."""

    def __init__(self, base_url: str, chats: int) -> None:
        import anthropic  # noqa: TID251 - the floor is the raw SDK call, by definition

        from aisystem.models import AccessAction, AccessRule, Chat, ChatType
        from pipeline.claude.client import ClaudeClient
        from pipeline.processor import UnifiedMessageProcessor

        AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
        self.chats = chats
        self.floor_chats = [
            Chat.objects.create(
                transport="telegram", external_id=f"floor-{n}", chat_type=ChatType.PRIVATE
            )
            for n in range(chats)
        ]
        self.sdk = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0)
        self.client = ClaudeClient(base_url=base_url, fallback_api_key=KEY)
        self.processor = UnifiedMessageProcessor(client=self.client)
        self.transport = NullTransport()
        self.failures: Counter[str] = Counter()

    def inbound(self, i: int) -> InboundMessage:
        from django.utils import timezone

        from aisystem.models import ChatType
        from pipeline.types import InboundMessage

        who = str(i % self.chats + 1)
        return InboundMessage(
            transport="telegram",
            chat_id=who,
            chat_type=ChatType.PRIVATE,
            message_id=str(next(_ids)),
            sender_id=who,
            sender_username=f"user{who}",
            sender_name=f"User {who}",
            sent_at=timezone.now(),
            text=f"Hello, this is message {i}. What is 2+2?",
        )

    async def pipeline(self, i: int) -> Mapping[str, float]:
        result = await self.processor.process_message(self.inbound(i), self.transport)
        if result.status != "answered":
            self.failures[f"pipeline {result.status}: {result.reason}"] += 1
        return result.timings_ms

    async def floor(self, i: int) -> None:
        from asgiref.sync import sync_to_async

        message = self.inbound(i)
        chat = self.floor_chats[i % self.chats]
        inbound_pk = await sync_to_async(_floor_inbound)(chat.pk, message.message_id, message.text)
        async with self.sdk.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=1024,
            messages=[{"role": "user", "content": message.text}],
        ) as stream:
            final = await stream.get_final_message()
        text = "".join(block.text for block in final.content if block.type == "text")
        await sync_to_async(_floor_outbound)(chat.pk, inbound_pk, text)
        return None

    async def aclose(self) -> None:
        await self.sdk.close()
        await self.client.aclose()


def _floor_inbound(chat_pk: int, message_id: str, text: str) -> int:
    from django.utils import timezone

    from aisystem.models import Direction, Message, MessageStatus

    now = timezone.now()
    row = Message.objects.create(
        transport="telegram",
        chat_id=chat_pk,
        transport_message_id=message_id,
        direction=Direction.INBOUND,
        status=MessageStatus.PROCESSING,
        text=text,
        sent_at=now,
        created_at=now,
    )
    return row.pk


def _floor_outbound(chat_pk: int, inbound_pk: int, text: str) -> None:
    from django.utils import timezone

    from aisystem.models import Direction, Message, MessageStatus

    now = timezone.now()
    Message.objects.create(
        transport="telegram",
        chat_id=chat_pk,
        transport_message_id=f"out-{inbound_pk}",
        direction=Direction.OUTBOUND,
        reply_to_id=inbound_pk,
        status=MessageStatus.DELIVERED,
        text=text,
        sent_at=now,
        created_at=now,
    )


# --- Printing ------------------------------------------------------------------------------


def row(name: str, run: Run) -> str:
    return (
        f"  {name:<10} p50 {run.p50:8.2f} ms  p99 {run.p99:8.2f} ms  {run.rate:5.0f} msg/s"
        f"  cpu {run.cpu_ms:5.2f} ms/msg  ({len(run.latencies_ms)} in {run.elapsed_s:.1f} s)"
    )


def report(concurrency: int, floor: Run, pipeline: Run) -> None:
    overhead = pipeline.p50 - floor.p50
    ratio = pipeline.p50 / floor.p50
    print(f"\nconcurrency {concurrency}")
    print(row("floor", floor))
    print(row("pipeline", pipeline))
    print(
        f"  overhead p50 {overhead:.2f} ms, cpu {pipeline.cpu_ms - floor.cpu_ms:.2f} ms/msg; "
        f"ratio to floor: p50 {ratio:.2f}, throughput {floor.rate / pipeline.rate:.2f}"
    )
    steps = "  ".join(
        f"{step} {statistics.median(t.get(step, 0.0) for t in pipeline.timings):.2f}"
        for step in STEPS
    )
    print(f"  pipeline steps, median ms: {steps}")
    outside = pipeline.p50 - statistics.median(t["total"] for t in pipeline.timings)
    # what the processor cannot time itself: the thread hop before the first step
    print(f"  outside the processor's own timings (p50 minus median total): {outside:.2f} ms")
    print(
        f"  targets: overhead p50 <= {TARGET_OVERHEAD_MS:g} ms "
        f"{verdict(overhead <= TARGET_OVERHEAD_MS)}; >= {TARGET_RATE:g} msg/s "
        f"{verdict(pipeline.rate >= TARGET_RATE)}; ratio <= {TARGET_RATIO:g} "
        f"{verdict(ratio <= TARGET_RATIO)}"
    )


# --- Profiling -----------------------------------------------------------------------------

_SQL_SHAPE = re.compile(r"'[^']*'|\"s\d+_x\d+\"|\b\d+(\.\d+)?\b|%s")


class QueryLog:
    """An execute wrapper: how often each statement shape ran and how long it took."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.ms: defaultdict[str, float] = defaultdict(float)

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = _SQL_SHAPE.sub("?", sql)[:110]
            self.counts[shape] += 1
            self.ms[shape] += (time.perf_counter() - start) * 1000


def _watch(log: QueryLog, profiler: cProfile.Profile, on: bool) -> None:
    """Run in the ORM's thread (asgiref's one thread-sensitive worker): its SQL and its CPU."""
    from django.db import connection

    if on:
        connection.execute_wrappers.append(log)
        profiler.enable()
    else:
        profiler.disable()
        connection.execute_wrappers.remove(log)


async def profile(bench: Bench, messages: int) -> None:
    """One message at a time: the SQL issued, and where each thread spent its time."""
    from asgiref.sync import sync_to_async

    log = QueryLog()
    loop_profiler, orm_profiler = cProfile.Profile(), cProfile.Profile()
    await sync_to_async(_watch)(log, orm_profiler, True)
    loop_profiler.enable()
    await load(bench.pipeline, messages, 1)
    loop_profiler.disable()
    await sync_to_async(_watch)(log, orm_profiler, False)
    total = sum(log.counts.values())
    print(
        f"\nprofile: {messages} messages at concurrency 1, {total / messages:.1f} statements "
        f"each (each BEGIN also has a COMMIT, not counted)"
    )
    print(f"  {'per msg':>7} {'ms/msg':>7}  statement")
    for shape, count in log.counts.most_common():
        print(f"  {count / messages:7.2f} {log.ms[shape] / messages:7.3f}  {shape}")
    ours = rf"{re.escape(str(ROOT))}/(pipeline|aisystem)/"
    for title, profiler in (
        ("event loop thread (coroutines: cumulative includes their awaits)", loop_profiler),
        ("ORM thread (sync_to_async)", orm_profiler),
    ):
        print(f"\n  {title}, project functions by cumulative time:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(ours, 20)


# --- Main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, base_url: str) -> None:
    from asgiref.sync import sync_to_async

    bench = await sync_to_async(Bench)(base_url, args.chats)
    try:
        # Warm-up: every chat, sender and conversation exists; connections and imports are hot.
        await load(bench.floor, 2 * args.chats, 1)
        await load(bench.pipeline, 2 * args.chats, 1)
        for concurrency in args.concurrency:
            await load(bench.floor, args.chats, concurrency)
            floor = await load(bench.floor, args.messages, concurrency)
            await load(bench.pipeline, args.chats, concurrency)
            pipeline = await load(bench.pipeline, args.messages, concurrency)
            report(concurrency, floor, pipeline)
        if args.profile:
            await profile(bench, args.profile)
    finally:
        await bench.aclose()
    if bench.failures:
        print(f"\nnot answered: {dict(bench.failures)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000, help="per run (default 1000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--chats", type=int, default=50, help="distinct chats (one sender each)")
    parser.add_argument("--profile", type=int, default=0, help="then profile this many messages")
    args = parser.parse_args()
    workload = f"{args.messages} text messages per run, {args.chats} chats"
    with_fake_claude(workload, lambda base_url: run(args, base_url))


if __name__ == "__main__":
    main()
