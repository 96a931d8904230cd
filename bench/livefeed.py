"""Benchmark: live-feed fan-out, from a process that records events to 200 browsers.

Run: .venv/bin/python bench/livefeed.py [--clients 200] [--rate 100] [--seconds 10]
                                        [--flood 3000] [--modes embedded redis]

A real daphne process serves ``aisystem.asgi:application`` on a free loopback port, on a fresh
SQLite database in a temporary directory (DATABASE_URL is ignored: the developer's data is
never touched). This process signs a staff user in and opens ``--clients`` WebSockets to
``/ws/live/`` with its session cookie (a minimal RFC 6455 client, no extra dependency). A
third process, the emitter, calls ``events_record`` as the pipeline does (``--batch`` events
per call and transaction, 3 by default), with the wall-clock time of the call in ``data``.
Each client notes when each event arrives.

Two phases per mode:
- paced: ``--rate`` events/s for ``--seconds``: fan-out latency (emitted → received, over
  every client and event) at p50 and p99;
- flood: ``--flood`` events as fast as the emitter can record them: events/s sustained, i.e.
  events delivered to every client per second, from the first emit to the last delivery.

Modes: ``embedded`` (the relay polls the Event table) and ``redis`` (channels-redis pub/sub;
needs REDIS_URL or a Redis at 127.0.0.1:6379, else "skipped: no Redis"; database 13 by
default, whose pub/sub prefix no other setting shares). The bench's processes freeze the
objects Django loaded (``gc.freeze()``, as ``aisystem/asgi.py`` does), so that garbage
collection pauses are not counted as fan-out. Targets: p99 <= 100 ms embedded, <= 50 ms
Redis. Nothing is asserted: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, bench_env, setup_django, verdict

HOST = "127.0.0.1"
TARGET_P99_MS = {"embedded": 100.0, "redis": 50.0}
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"


# --- Set-up: database, staff session, daphne ------------------------------------------------


def staff_session() -> str:
    """A signed-in staff user's session key (after ``setup_django``); the user may view
    messages, which the live feed requires."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    user = get_user_model().objects.create_user("bench", password="bench-Passw0rd-long")
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="aisystem", codename="view_message")
    )
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_daphne(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port), "aisystem.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), 0.2):
                return web
        except OSError:
            time.sleep(0.1)
    web.kill()
    raise RuntimeError("daphne did not start within 30 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- A minimal WebSocket client (RFC 6455: text frames in, close out) ----------------------


class Socket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str, cookie: str) -> Socket:
        reader, writer = await asyncio.open_connection(HOST, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://{HOST}:{port}\r\n"
                f"Cookie: sessionid={cookie}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"handshake refused: {head[:80]!r}")
        return cls(reader, writer)

    async def receive(self) -> str | None:
        """The next text message; None once the server closes."""
        parts: list[bytes] = []
        while True:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                return None
            if opcode in (0x0, 0x1):
                parts.append(payload)
                if first & 0x80:
                    return b"".join(parts).decode()
            # ping/pong: daphne does not ping within a bench's length; ignore

    async def close(self) -> None:
        mask = os.urandom(4)
        self.writer.write(bytes([0x88, 0x80]) + mask)
        await self.writer.drain()
        self.writer.close()


# --- Watching: clients and what they saw ---------------------------------------------------


@dataclass
class Watcher:
    """One browser: when each event of the current run reached it."""

    socket: Socket
    run: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    first_emit: float = float("inf")
    last_at: float = 0.0

    async def listen(self, ready: asyncio.Event) -> None:
        while (text := await self.socket.receive()) is not None:
            now = time.time()
            frame = json.loads(text)
            if frame["type"] == "history":
                ready.set()
                continue
            for event in frame["events"]:
                data = event["data"]
                if data.get("run") != self.run:
                    continue
                self.latencies_ms.append((now - data["t"]) * 1000)
                self.first_emit = min(self.first_emit, data["t"])
                self.counts[data["seq"]] = self.counts.get(data["seq"], 0) + 1
                self.last_at = now

    def reset(self, run: str) -> None:
        self.run, self.latencies_ms, self.counts = run, [], {}
        self.first_emit, self.last_at = float("inf"), 0.0


async def connect_all(
    port: int, cookie: str, clients: int
) -> tuple[list[Watcher], list[asyncio.Task[None]]]:
    gate = asyncio.Semaphore(50)

    async def one() -> tuple[Watcher, asyncio.Task[None]]:
        async with gate:
            watcher = Watcher(await Socket.open(port, "/ws/live/", cookie))
            ready = asyncio.Event()
            task = asyncio.create_task(watcher.listen(ready))
            await asyncio.wait_for(ready.wait(), 30)
            return watcher, task

    pairs = await asyncio.gather(*(one() for _ in range(clients)))
    return [w for w, _ in pairs], [t for _, t in pairs]


# --- The emitter (its own process) ---------------------------------------------------------


def emit_main(count: int, rate: float, batch: int, run: str) -> None:
    """Record ``count`` events, ``batch`` per ``events_record`` call (one transaction), at
    ``rate`` events per second (0: flat out), as the pipeline does: from async code through
    sync_to_async. Prints the elapsed seconds."""
    import django

    django.setup()
    from asgiref.sync import sync_to_async

    from aisystem.events import PendingEvent, events_record

    gc.freeze()  # a full collection of Django's objects would be counted as fan-out latency

    def record(first: int) -> None:
        now = time.time()
        events_record(
            [
                PendingEvent(
                    kind="bench.tick",
                    summary=f"tick {seq}",
                    data={"t": now, "seq": seq, "run": run},
                )
                for seq in range(first, min(first + batch, count))
            ]
        )

    async def emit() -> float:
        started = time.monotonic()
        for first in range(0, count, batch):
            if rate:
                await asyncio.sleep(max(0.0, started + first / rate - time.monotonic()))
            await sync_to_async(record)(first)
        return time.monotonic() - started

    print(f"{asyncio.run(emit()):.3f}", flush=True)


async def run_emitter(env: dict[str, str], count: int, rate: float, batch: int, run: str) -> float:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, __file__, "--emit", str(count), "--rate", str(rate)),
        *("--batch", str(batch), "--run", run),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError("the emitter failed")
    return float(out.decode().strip().splitlines()[-1])


# --- Phases and report -----------------------------------------------------------------------


def percentile(sorted_samples: list[float], fraction: float) -> float:
    if not sorted_samples:
        return float("nan")
    return sorted_samples[min(len(sorted_samples) - 1, int(len(sorted_samples) * fraction))]


@dataclass(frozen=True)
class Phase:
    """What the clients saw in one phase (a snapshot: the watchers are reset for the next)."""

    name: str
    count: int
    clients: int
    emit_seconds: float
    latencies: list[float]  # sorted, ms
    received: int
    duplicated: int
    first_emit: float
    last_delivery: float

    @classmethod
    def of(cls, name: str, count: int, emit_seconds: float, watchers: list[Watcher]) -> Phase:
        return cls(
            name=name,
            count=count,
            clients=len(watchers),
            emit_seconds=emit_seconds,
            latencies=sorted(ms for w in watchers for ms in w.latencies_ms),
            received=sum(len(w.counts) for w in watchers),
            duplicated=sum(n - 1 for w in watchers for n in w.counts.values()),
            first_emit=min(w.first_emit for w in watchers),
            last_delivery=max(w.last_at for w in watchers),
        )

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)

    def line(self) -> str:
        samples = self.latencies or [float("nan")]
        sustained = self.count / max(self.last_delivery - self.first_emit, 1e-9)
        return (
            f"  {self.name:<6} {self.count} events x {self.clients} clients: "
            f"p50 {statistics.median(samples):6.1f} ms  p99 {self.p99:6.1f} ms  "
            f"max {samples[-1]:6.1f} ms | recorded {self.count / self.emit_seconds:5.0f}/s, "
            f"delivered to all {sustained:5.0f}/s | missing "
            f"{self.count * self.clients - self.received}, duplicated {self.duplicated}"
        )


async def phase(
    name: str, env: dict[str, str], watchers: list[Watcher], count: int, rate: float, batch: int
) -> Phase:
    run = f"{name}-{time.time_ns()}"
    for watcher in watchers:
        watcher.reset(run)
    emit_seconds = await run_emitter(env, count, rate, batch, run)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(len(w.counts) < count for w in watchers):
        await asyncio.sleep(0.05)
    return Phase.of(name, count, emit_seconds, watchers)


async def bench_mode(mode: str, args: argparse.Namespace, cookie: str, redis_url: str) -> None:
    env = bench_env(args.data_dir, redis_url=redis_url)
    port = free_port()
    web = start_daphne(env, port)
    try:
        watchers, tasks = await connect_all(port, cookie, args.clients)
        cpu, own_cpu, wall = cpu_seconds(web.pid), time.process_time(), time.monotonic()
        paced_count = int(args.rate * args.seconds)
        paced = await phase("paced", env, watchers, paced_count, args.rate, args.batch)
        flood = await phase("flood", env, watchers, args.flood, 0, args.batch)
        elapsed = time.monotonic() - wall
        print(
            f"\n{mode}: {args.clients} clients; CPU use: daphne "
            f"{(cpu_seconds(web.pid) - cpu) / elapsed:.0%}, the clients' process "
            f"{(time.process_time() - own_cpu) / elapsed:.0%}"
        )
        print(paced.line())
        print(flood.line())
        met = verdict(paced.p99 <= TARGET_P99_MS[mode])
        print(f"  target: paced p99 <= {TARGET_P99_MS[mode]:g} ms {met}")
        await asyncio.gather(*(w.socket.close() for w in watchers), return_exceptions=True)
        for task in tasks:
            task.cancel()
    finally:
        web.terminate()
        web.wait(timeout=15)


def redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or HOST, parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="paced events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced phase length")
    parser.add_argument("--flood", type=int, default=3000, help="events in the flood phase")
    parser.add_argument(
        "--batch", type=int, default=3, help="events per events_record call (the pipeline: 3)"
    )
    parser.add_argument("--modes", nargs="+", default=["embedded", "redis"])
    parser.add_argument("--emit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit is not None:
        emit_main(args.emit, args.rate, args.batch, args.run)
        return
    args.data_dir = tempfile.mkdtemp(prefix="aisystem-livefeed-")
    redis_url = os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS
    setup_django(args.data_dir)
    cookie = staff_session()
    gc.freeze()  # as aisystem/asgi.py does: no 100 ms collections while the clients measure
    print(
        f"SQLite in {args.data_dir} (removed at the end); {args.clients} WebSocket clients in "
        f"this process, events recorded by another, {args.batch} per transaction; paced "
        f"{args.rate:g}/s for "
        f"{args.seconds:g} s, flood {args.flood}; {os.cpu_count()} CPUs"
    )
    try:
        for mode in args.modes:
            if mode == "redis" and not redis_reachable(redis_url):
                print("\nredis: skipped: no Redis (set REDIS_URL or start one on 127.0.0.1:6379)")
                continue
            asyncio.run(bench_mode(mode, args, cookie, redis_url if mode == "redis" else ""))
    finally:
        shutil.rmtree(args.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
