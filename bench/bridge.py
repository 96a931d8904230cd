"""Benchmark: raw Telegram updates through the bridge and the whole pipeline, on SQLite.

Run: .venv/bin/python bench/bridge.py [--messages 2000] [--chats 1000] [--account bot|user]
                                      [--concurrency N] [--paced] [--message-cache N]
                                      [--no-reactions] [--quiet 20]

Everything but the network is real: ``TelegramBridge.run()`` with a kurigram ``Client`` whose
sessions are ``FakeSession`` (``telegram_bridge.faketelegram``, the fake Telegram the bridge's
tests use), so each update goes raw MTProto ``Updates`` → ``Client.handle_updates`` →
Pyrogram's dispatcher and parser → the bridge's handler and adapter → the chat dispatcher →
``UnifiedMessageProcessor`` (gate, context, router, the Claude call, delivery, recording) →
``TelegramTransport`` → the raw requests the fake server captures (reactions, typing, the
streamed reply and its final edit). Claude is ``FakeClaude`` with its default echo and no
latency, in a child process as in bench/pipeline.py; the database is a fresh SQLite file in a
temporary directory.

Updates and the fake server's answers carry only the peers they concern, as Telegram's do,
so a large peer list costs nothing per message unless the bridge makes it so. Unless ``--paced``,
the outbound limiter books its slots but does not wait them out: its waits are Telegram's
pacing (about one message per second per chat, 30/s overall for bots), not work the bridge
does, and with an instant model they would be all there is to measure (``--paced`` shows
them). Each run starts after a warm-up of one message per chat (chats, senders and
conversations exist; connections and imports are hot).

Figures: messages per second until every reply's first SendMessage was captured, and until
every message was finished (final edit sent, outcome recorded); CPU time per message; and peak
RSS (``ru_maxrss``) after each stage; and the Telegram requests per message by function (a
``GetMessages`` there would be Pyrogram fetching the message a reply answers once it has
fallen out of the client's message cache; the bridge turns that off and fetches only for
incoming replies, see ``telegram_bridge.adapter``; ``--no-reactions`` turns the status
reactions off in every chat, after the warm-up), with how many of them went through the
outbound limiter and how many optional ones (typing, 👀, 🤔) it dropped. Those come twice:
for short answers one at a time (``--quiet`` of them, first, paced for real: what one short
answer costs when the budget has room), and for the burst (which books the budget far ahead, since
the limiter's waits are not waited out, so the optional requests give way). The baseline is the
pipeline alone with a transport that does nothing (``NullTransport``, as in bench/pipeline.py),
same messages, chats and concurrency, so the ratio is the bridge's own cost: Pyrogram, the
adapter, the dispatcher, the transport.
Nothing is asserted: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KEY, NullTransport, verdict, with_fake_claude

if TYPE_CHECKING:  # the real imports wait for django.setup()
    from telegram_bridge.bridge import TelegramBridge

TARGET_RATE = 150.0
TARGET_RSS_MB = 250.0
TARGET_REQUESTS = 4.0  # per short answer (issue 14)
FIRST_USER_ID = 10_000_000
BASELINE_OFFSET = 1_000_000_000


def rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Run:
    messages: int
    replied_s: float  # until every reply's first SendMessage was captured
    finished_s: float  # until every message was finished
    cpu_s: float
    rss_mb: float
    requests: Counter[str] = field(default_factory=Counter)  # sent to Telegram, by function
    admitted: int = 0  # requests the outbound limiter let through
    dropped: int = 0  # optional requests it dropped

    @property
    def rate(self) -> float:
        return self.messages / self.finished_s

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / self.messages


# --- The fake server, lean -------------------------------------------------------------------


def lean_telegram(me: Any) -> Any:
    """A ``FakeTelegram`` for ``me`` that keeps no request log (it counts the replies
    instead) and builds the updates Telegram would push (``text_update``)."""
    from pyrogram import raw  # noqa: TID251 - raw MTProto in and out, as the bridge's tests

    from telegram_bridge.faketelegram import FakeTelegram
    from telegram_bridge.faketelegram.builders import now, wire

    class LeanTelegram(FakeTelegram):
        def __init__(self) -> None:
            super().__init__(me)
            self.replied: set[tuple[int, int]] = set()
            self.counts: Counter[str] = Counter()
            self.expected = 0
            self.all_replied = asyncio.Event()

        async def answer(self, query: Any) -> Any:
            result = await super().answer(query)
            self.requests.clear()
            self.request_times.clear()
            self.counts[type(query).__name__] += 1
            if isinstance(query, raw.functions.messages.SendMessage) and query.reply_to:
                self.replied.add((query.peer.user_id, query.reply_to.reply_to_msg_id))
                if len(self.replied) >= self.expected:
                    self.all_replied.set()
            return result

        def text_update(self, message_id: int, user: raw.types.User, text: str) -> Any:
            """A new private message from ``user``, off the wire."""
            message = raw.types.Message(
                id=message_id,
                peer_id=raw.types.PeerUser(user_id=user.id),
                date=now(),
                message=text,
            )
            update = raw.types.UpdateNewMessage(message=message, pts=self.pts(), pts_count=1)
            return wire(self.updates(update))

        def expect(self, count: int) -> None:
            self.counts = Counter()
            self.replied.clear()
            self.expected = count
            self.all_replied.clear()

    return LeanTelegram()


# --- The two ways through --------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, base_url: str) -> None:
        from aisystem.models import AccessAction, AccessRule, TelegramSession
        from telegram_bridge.faketelegram.builders import make_user, session_string

        self.args = args
        is_bot = args.account == "bot"
        self.me = make_user(7000, "Assistant", username="bench_bot", bot=is_bot, is_self=True)
        self.server = lean_telegram(self.me)
        self.users = [make_user(FIRST_USER_ID + n, f"User {n}") for n in range(args.chats)]
        self.server.add(*self.users)
        self.base_url = base_url
        self.pacing = args.paced  # the limiter's waits are waited out
        AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
        mode = TelegramSession.Mode.BOT if is_bot else TelegramSession.Mode.USER
        self.session = TelegramSession.objects.create(
            name="bench", mode=mode, session_string=session_string(self.me)
        )
        self._ids = itertools.count(1)

    def bridge(self) -> TelegramBridge:
        from pipeline.claude.client import ClaudeClient
        from pipeline.processor import UnifiedMessageProcessor
        from telegram_bridge.bridge import TelegramBridge
        from telegram_bridge.client_state import DatabaseStorage
        from telegram_bridge.config import BridgeConfig
        from telegram_bridge.faketelegram import HarnessClient
        from telegram_bridge.replies import StopButtonResponses

        storage = DatabaseStorage(
            session_pk=self.session.pk, session_string=self.session.session_string
        )
        # As telegram_bridge.sessions.client_for_session builds it.
        options: dict[str, Any] = {"skip_updates": False, "workers": 2}
        if self.args.message_cache:
            options["max_message_cache_size"] = self.args.message_cache
        client = HarnessClient(self.server, storage_engine=storage, **options)
        config = BridgeConfig.from_settings()
        if self.args.concurrency:
            config = replace(config, max_concurrency=self.args.concurrency)
        self.claude = ClaudeClient(base_url=self.base_url, fallback_api_key=KEY)
        processor = UnifiedMessageProcessor(client=self.claude, responses=StopButtonResponses())
        return TelegramBridge(
            session=self.session,
            client=client,
            config=config,
            processor=processor,
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        """The bridge's sleep: waited out when pacing, else booked only (module docstring)."""
        await asyncio.sleep(seconds if self.pacing else 0)

    def update(self, i: int) -> Any:
        """Message ``i``: text from the sender of chat ``i % chats``, as Telegram pushes it."""
        user = self.users[i % len(self.users)]
        return self.server.text_update(
            next(self._ids), user, f"Hello, this is message {i}. What is 2+2?"
        )

    async def through_bridge(self, bridge: TelegramBridge, first: int, count: int) -> Run:
        updates = [self.update(i) for i in range(first, first + count)]  # built before timing
        self.server.expect(count)
        limiter = _limiter(bridge)
        admitted, dropped = limiter.admitted, limiter.dropped
        start, cpu = time.perf_counter(), time.process_time()
        for update in updates:
            await bridge.client.handle_updates(update)
        await self.server.all_replied.wait()
        replied = time.perf_counter() - start
        await _idle(bridge)
        finished = time.perf_counter() - start
        cpu = time.process_time() - cpu
        return Run(
            count,
            replied,
            finished,
            cpu,
            rss_mb(),
            self.server.counts,
            limiter.admitted - admitted,
            limiter.dropped - dropped,
        )

    async def one_at_a_time(self, bridge: TelegramBridge, first: int, count: int) -> Run:
        """``count`` short answers, each finished before the next arrives, paced for real."""
        limiter = _limiter(bridge)
        admitted, dropped = limiter.admitted, limiter.dropped
        self.pacing, paced = True, self.pacing
        counts: Counter[str] = Counter()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            for i in range(first, first + count):
                self.server.expect(1)
                await bridge.client.handle_updates(self.update(i))
                await self.server.all_replied.wait()
                await _idle(bridge)
                counts += self.server.counts
        finally:
            self.pacing = paced
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        return Run(
            count,
            elapsed,
            elapsed,
            cpu,
            rss_mb(),
            counts,
            limiter.admitted - admitted,
            limiter.dropped - dropped,
        )

    async def pipeline_alone(self, first: int, count: int, concurrency: int) -> Run:
        """The processor with ``NullTransport``: ``concurrency`` workers, the same chats."""
        from django.utils import timezone

        from pipeline.claude.client import ClaudeClient
        from pipeline.processor import UnifiedMessageProcessor
        from pipeline.types import InboundMessage

        client = ClaudeClient(base_url=self.base_url, fallback_api_key=KEY)
        processor = UnifiedMessageProcessor(client=client)
        transport = NullTransport()
        todo = iter(range(first, first + count))

        async def worker() -> None:
            for i in todo:
                user = self.users[i % len(self.users)]
                other = str(user.id + BASELINE_OFFSET)  # chats of its own, as many
                message = InboundMessage(
                    transport="telegram",
                    chat_id=other,
                    chat_type="private",
                    message_id=str(i),
                    sender_id=other,
                    sender_name=user.first_name,
                    sent_at=timezone.now(),
                    text=f"Hello, this is message {i}. What is 2+2?",
                )
                await processor.process_message(message, transport)

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        await client.aclose()
        return Run(count, elapsed, elapsed, time.process_time() - cpu, rss_mb())


def _limiter(bridge: TelegramBridge) -> Any:
    assert bridge.transport is not None
    return bridge.transport.limiter


async def _idle(bridge: TelegramBridge) -> None:
    while bridge.dispatcher.active_chats or bridge.dispatcher.in_flight:
        await asyncio.sleep(0.005)


async def started(bridge: TelegramBridge) -> asyncio.Task[int]:
    task = asyncio.create_task(bridge.run())
    while not bridge.intake_open:
        if task.done():
            raise RuntimeError(f"the bridge stopped at start with {task.result()}")
        await asyncio.sleep(0.01)
    return task


async def timed(label: str, action: Callable[[], Awaitable[Run]]) -> Run:
    print(f"  {label}…", flush=True)
    return await action()


# --- Printing ------------------------------------------------------------------------------


def requests_line(label: str, run: Run) -> str:
    """Requests per message by function, their total, and how many the limiter saw."""
    per_message = ", ".join(
        f"{name} {count / run.messages:.2f}" for name, count in run.requests.most_common()
    )
    total = sum(run.requests.values()) / run.messages
    return (
        f"  Telegram requests per message, {label}: {per_message} = {total:.2f}; "
        f"through the limiter {run.admitted / run.messages:.2f}, "
        f"optional ones dropped {run.dropped / run.messages:.2f}"
    )


def report(
    args: argparse.Namespace, bridge: Run, quiet: Run | None, baseline: Run, rss_start: float
) -> None:
    print()
    for name, run in (("bridge", bridge), ("pipeline alone", baseline)):
        print(
            f"  {name:<15} {run.rate:6.0f} msg/s  (all replied in {run.replied_s:5.1f} s, "
            f"finished in {run.finished_s:5.1f} s)  cpu {run.cpu_ms:5.2f} ms/msg  "
            f"peak RSS {run.rss_mb:6.1f} MB"
        )
    if quiet is not None:
        print(requests_line(f"short answers one at a time ({quiet.messages})", quiet))
        sent = sum(quiet.requests.values())
        met = sent / quiet.messages <= TARGET_REQUESTS and quiet.admitted == sent
        print(
            f"  target: <= {TARGET_REQUESTS:g} requests for a short answer, all under the "
            f"limiter {verdict(met)}"
        )
    print(requests_line("in the burst", bridge))
    print(
        f"  bridge vs pipeline alone: throughput ratio {baseline.rate / bridge.rate:.2f}, "
        f"cpu +{bridge.cpu_ms - baseline.cpu_ms:.2f} ms/msg"
    )
    print(
        f"  RSS: {rss_start:.1f} MB after setup, {bridge.rss_mb:.1f} MB peak after the bridge "
        f"run, {baseline.rss_mb:.1f} MB at the end"
    )
    print(
        f"  targets: >= {TARGET_RATE:g} msg/s {verdict(bridge.rate >= TARGET_RATE)}; "
        f"<= {TARGET_RSS_MB:g} MB RSS {verdict(bridge.rss_mb <= TARGET_RSS_MB)}"
    )


# --- Main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, base_url: str) -> None:
    from asgiref.sync import sync_to_async

    bench = await sync_to_async(Bench)(args, base_url)
    rss_start = rss_mb()
    bridge = bench.bridge()
    task = await started(bridge)
    concurrency = bridge.dispatcher.max_concurrency
    try:
        quiet = None
        if args.quiet:  # first, while the limiter's budget is free (the burst books it ahead)
            quiet = await timed(
                "short answers one at a time",
                lambda: bench.one_at_a_time(bridge, 0, args.quiet),
            )
        await timed("bridge warm-up", lambda: bench.through_bridge(bridge, args.quiet, args.chats))
        if args.no_reactions:
            from aisystem.models import Chat

            await Chat.objects.aupdate(status_reactions=False)
        measured = await timed(
            "bridge", lambda: bench.through_bridge(bridge, args.chats + args.quiet, args.messages)
        )
    finally:
        bridge.shutdown.request_stop()
        await task
        await bench.claude.aclose()
    first = args.chats + args.quiet + args.messages
    await timed("baseline warm-up", lambda: bench.pipeline_alone(first, args.chats, concurrency))
    baseline = await timed(
        "pipeline alone",
        lambda: bench.pipeline_alone(first + args.chats, args.messages, concurrency),
    )
    report(args, measured, quiet, baseline, rss_start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000, help="measured (default 2000)")
    parser.add_argument("--chats", type=int, default=1000, help="active chats (default 1000)")
    parser.add_argument("--account", choices=["bot", "user"], default="bot")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="chats at once (default: the setting)"
    )
    parser.add_argument("--paced", action="store_true", help="wait out the outbound limiter")
    parser.add_argument("--message-cache", type=int, default=0, help="client message cache size")
    parser.add_argument(
        "--no-reactions", action="store_true", help="status reactions off in every chat"
    )
    parser.add_argument(
        "--quiet", type=int, default=20, help="short answers one at a time first (default 20)"
    )
    args = parser.parse_args()
    workload = (
        f"{args.messages} text messages over {args.chats} chats ({args.account} account"
        f"{', paced' if args.paced else ''}{', reactions off' if args.no_reactions else ''}) "
        f"after a warm-up of one per chat"
    )
    with_fake_claude(workload, lambda base_url: run(args, base_url))


if __name__ == "__main__":
    main()
