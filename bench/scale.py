"""Benchmark: REST messages per second with 1 and 2 web processes on one PostgreSQL database.

Run: .venv/bin/python bench/scale.py [--database-url URL] [--redis-url URL] [--messages 300]
                                     [--chats 30] [--webs 1 2] [--rounds 1] [--ttft 0]
                                     [--idempotency-key]

The scaled mode as the README's "Scaling out" runs it, on loopback: ``--webs``'s largest number
of daphne processes (``python -m daphne aisystem.asgi:application``, each on its own port)
share one PostgreSQL database and, with ``--redis-url``, one Redis for the cache and the
channel layer; the fake Messages API (``manage.py fakeclaude``, an echo, ``--ttft`` seconds
before its first token) answers for Claude in a process of its own.

- **Database.** ``--database-url`` (default ``TEST_POSTGRES_URL``, then ``DATABASE_URL``) is
  only used to create a fresh database for the run (the role needs CREATEDB, as CI's has), which
  is migrated, given a token (``manage.py createapitoken --name bench``, whose access rule
  allows it) and dropped at the end: the developer's data is never touched.
- **Redis** (default ``REDIS_URL``, then ``TEST_REDIS_URL``; ``--redis-url ''`` for none, then
  the cache is the database one and the channel layer in-process): the run writes only
  expiring cache keys there.
- Every process gets the same explicit ``SECRET_KEY`` and ``FIELD_ENCRYPTION_KEYS``, as a
  deployment must, and a scratch data directory (so ``/metrics`` files are the run's own).

For each configuration (N = 1, 2 web processes by default) and round, ``--chats`` clients each
own a chat and send its messages one after another (each waits for its answer, as a person
does) with ``POST /api/v1/messages``; each request goes to the next web process in round-robin
order. A warm-up of one message per chat is not counted (nor, before the first run, two per
chat on every web process). Printed per run: answered messages per second (wall clock, first
request to last answer), end-to-end latency p50/p95/p99, the pipeline's own
``timings_ms.total`` p50, and CPU use in cores: each web process, the PostgreSQL server (when
it runs on this host: the postmaster and every backend, of any database, live or reaped), the
fake, this process (the clients) and the rest of the host (Redis, other work); then the web
processes' and PostgreSQL's CPU per answer, the figures that carry over to a bigger machine.
Then, per configuration, the median rate over the rounds, and the ratio of each configuration
to the first (``2 web / 1 web``). No worker runs: the REST path answers inline.

Nothing is asserted: the figure is a machine's, and a machine shared with other work, or with
fewer cores than processes, caps the ratio (see the CPU line: 2 web processes can only scale
if there are idle cores for the second).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KEY, ROOT, bench_env
from bench.livefeed import HOST, cpu_seconds, free_port, start_daphne

MANAGE = [sys.executable, str(ROOT / "manage.py")]
REQUEST_TIMEOUT_SECONDS = 120.0


# --- Set-up: a database of the run's own, the fake, the web processes -----------------------


@contextmanager
def scratch_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A new, empty database on the server of ``admin_url`` (whose role may create databases);
    yields its URL and the server's version; dropped on exit (after its clients are gone)."""
    name = f"aisystem_scale_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl(), version
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # FORCE (PostgreSQL 13+) ends a connection a killed web process left behind.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py ARGS`` in the run's environment; its stdout (stderr passes through)."""
    done = subprocess.run(
        [*MANAGE, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed with status {done.returncode}")
    return done.stdout


@contextmanager
def fake_claude(env: dict[str, str], ttft: float) -> Iterator[tuple[str, int]]:
    """``manage.py fakeclaude`` on a free port, accepting only ``KEY``: its base URL and pid."""
    fake = subprocess.Popen(
        [*MANAGE, "fakeclaude", "--port", "0", "--api-key", KEY, "--ttft", str(ttft)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = fake.stdout.readline() if fake.stdout else ""
        found = re.search(r"https?://\S+", first)
        if found is None:
            raise SystemExit(f"fakeclaude did not start: {first.strip()!r}")
        yield found.group(0), fake.pid
    finally:
        stop(fake)


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM, as a service manager stops it; SIGKILL if it is still there after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Measuring -------------------------------------------------------------------------------


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host so far, from /proc/stat (zeros elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def _stat(pid: str | int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first); [] if unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def tree_cpu(root: int) -> float:
    """CPU seconds of process ``root`` and of its children, those running and those it has
    reaped (PostgreSQL's server: a backend per connection, which the web processes open and
    close per request, so backends come and go during a run). Linux /proc; 0 elsewhere."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else []
        if fields and (int(entry.name) == root or fields[1] == str(root)):
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def local_postmaster(connection: psycopg.Connection[tuple[int]]) -> int | None:
    """The pid of the PostgreSQL server ``connection`` talks to, if it runs on this host."""
    row = connection.execute("SELECT pg_backend_pid()").fetchone()
    fields = _stat(row[0]) if row else []
    if not fields:
        return None
    parent = int(fields[1])
    try:
        command = Path(f"/proc/{parent}/comm").read_text().strip()
    except OSError:
        return None
    return parent if command in ("postgres", "postmaster") else None


@dataclass(frozen=True)
class Watched:
    """The processes whose CPU a run reports: the web processes, the fake, and PostgreSQL's
    server when it runs on this host (None otherwise)."""

    web_pids: list[int]
    fake_pid: int
    postmaster: int | None


@dataclass(frozen=True)
class Cpu:
    """A snapshot of the CPU seconds used so far: each web process, the fake, this process,
    the PostgreSQL server with its backends, the host."""

    webs: tuple[float, ...]
    fake: float
    own: float
    database: float
    host_busy: float

    @classmethod
    def now(cls, watched: Watched) -> Cpu:
        return cls(
            webs=tuple(cpu_seconds(pid) for pid in watched.web_pids),
            fake=cpu_seconds(watched.fake_pid),
            own=time.process_time(),
            database=tree_cpu(watched.postmaster) if watched.postmaster else 0.0,
            host_busy=host_cpu()[0],
        )


@dataclass
class Run:
    webs: int
    latencies_ms: list[float] = field(default_factory=list)
    pipeline_ms: list[float] = field(default_factory=list)  # the processor's own total
    failures: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    cpu_line: str = ""

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, n: int) -> float:
        if len(self.latencies_ms) < 2:
            return max(self.latencies_ms, default=float("nan"))
        return statistics.quantiles(self.latencies_ms, n=100)[n - 1]

    def line(self) -> str:
        if not self.latencies_ms:
            return f"  {self.webs} web: nothing answered; {dict(self.failures)}"
        pipeline = statistics.median(self.pipeline_ms) if self.pipeline_ms else float("nan")
        return (
            f"  {self.webs} web  {self.rate:6.1f} msg/s  p50 {self.percentile(50):7.1f} ms  "
            f"p95 {self.percentile(95):7.1f} ms  p99 {self.percentile(99):7.1f} ms  "
            f"pipeline p50 {pipeline:6.1f} ms  ({len(self.latencies_ms)} in "
            f"{self.elapsed_s:.1f} s)"
        )


class Clients:
    """``--chats`` people, each sending its chat's messages in turn, round-robin over the
    web processes given."""

    def __init__(self, client: httpx.AsyncClient, token: str, *, idempotency: bool) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.idempotency = idempotency

    async def drive(self, ports: list[int], prefix: str, chats: int, messages: int) -> Run:
        run = Run(webs=len(ports))
        todo = iter(range(messages))
        turn = itertools.count()
        urls = [f"http://{HOST}:{port}/api/v1/messages" for port in ports]

        async def person(n: int) -> None:
            for i in todo:
                await self.send(run, urls[next(turn) % len(urls)], f"{prefix}-c{n}", n, i)

        start = time.perf_counter()
        await asyncio.gather(*(person(n) for n in range(chats)))
        run.elapsed_s = time.perf_counter() - start
        return run

    async def send(self, run: Run, url: str, chat_id: str, n: int, i: int) -> None:
        headers = dict(self.headers)
        if self.idempotency:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        body = {"chat_id": chat_id, "user_id": f"u{n}", "text": f"Message {i}: what is 2+2?"}
        start = time.perf_counter()
        try:
            response = await self.client.post(url, json=body, headers=headers)
        except httpx.HTTPError as error:
            run.failures[f"{type(error).__name__}"] += 1
            return
        latency = (time.perf_counter() - start) * 1000
        result = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 200 or result.get("status") != "answered":
            run.failures[f"HTTP {response.status_code} {result.get('status', '')}"] += 1
            return
        run.latencies_ms.append(latency)
        run.pipeline_ms.append(float(result.get("timings_ms", {}).get("total", float("nan"))))


def cpu_line(before: Cpu, after: Cpu, run: Run) -> str:
    """CPU use over a run in cores (1.00 = one core busy the whole time), and per answer."""
    elapsed, used, answered = run.elapsed_s, run.webs, max(len(run.latencies_ms), 1)

    def cores(seconds: float) -> float:
        return seconds / elapsed

    webs = [cores(b - a) for a, b in zip(before.webs[:used], after.webs[:used], strict=True)]
    fake, own = after.fake - before.fake, after.own - before.own
    database = after.database - before.database
    ours = sum(b - a for a, b in zip(before.webs, after.webs, strict=True)) + fake + own
    rest = (after.host_busy - before.host_busy) - ours - database
    return (
        f"         CPU in cores: web {' + '.join(f'{c:.2f}' for c in webs)}, PostgreSQL "
        f"{cores(database):.2f} (the whole server), fake {cores(fake):.2f}, clients "
        f"{cores(own):.2f}, rest of the host {cores(rest):.2f}; {os.cpu_count()} CPUs\n"
        f"         CPU per answer: web {sum(webs) * elapsed * 1000 / answered:.1f} ms, "
        f"PostgreSQL {database * 1000 / answered:.1f} ms"
    )


async def measure(
    args: argparse.Namespace, token: str, ports: list[int], watched: Watched
) -> list[Run]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=args.chats * len(ports))
    runs: list[Run] = []
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as client:
        clients = Clients(client, token, idempotency=args.idempotency_key)
        # Every process's lazy imports and first connections, before anything is counted.
        await clients.drive(ports, "warm", args.chats, 2 * args.chats * len(ports))
        for round_no in range(1, args.rounds + 1):
            for webs in args.webs:
                used, prefix = ports[:webs], f"r{round_no}-w{webs}"
                await clients.drive(used, prefix, args.chats, args.chats)  # the chats exist
                before = Cpu.now(watched)
                run = await clients.drive(used, prefix, args.chats, args.messages)
                run.cpu_line = cpu_line(before, Cpu.now(watched), run)
                print(f"round {round_no}:{run.line()}", flush=True)
                print(run.cpu_line, flush=True)
                if run.failures:
                    print(f"         not answered: {dict(run.failures)}", flush=True)
                runs.append(run)
    return runs


def summary(runs: list[Run], webs: list[int]) -> None:
    rates = {n: statistics.median(r.rate for r in runs if r.webs == n) for n in webs}
    print("\nmedian over rounds:")
    for n in webs:
        print(f"  {n} web  {rates[n]:6.1f} msg/s")
    base = webs[0]
    for n in webs[1:]:
        ratio = rates[n] / rates[base] if rates[base] else float("nan")
        print(f"ratio {n} web / {base} web: {ratio:.2f}")


# --- Main ------------------------------------------------------------------------------------


def run_env(data_dir: str, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment every process of the run shares, as a deployment's hosts would."""
    env = bench_env(data_dir, redis_url=redis_url)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        ANTHROPIC_API_KEY=KEY,
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL") or "",
        help="PostgreSQL server to create the run's database on (TEST_POSTGRES_URL, DATABASE_URL)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL") or "",
        help="Redis for the cache and channel layer (REDIS_URL, TEST_REDIS_URL); '' for none",
    )
    parser.add_argument("--messages", type=int, default=300, help="per run (default 300)")
    parser.add_argument("--chats", type=int, default=30, help="concurrent clients, one chat each")
    parser.add_argument("--webs", type=int, nargs="+", default=[1, 2], help="web processes")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every configuration")
    parser.add_argument(
        "--ttft", type=float, default=0.0, help="fake Claude's seconds to 1st token"
    )
    parser.add_argument(
        "--idempotency-key", action="store_true", help="send an Idempotency-Key with each message"
    )
    args = parser.parse_args()
    if urlsplit(args.database_url).scheme not in ("postgres", "postgresql"):
        parser.error(
            "needs PostgreSQL: pass --database-url postgres://USER:PASSWORD@HOST:5432/DB (a "
            "role that may create databases) or set TEST_POSTGRES_URL"
        )
    if min(args.webs) < 1 or args.messages < 1 or args.chats < 1 or args.rounds < 1:
        parser.error("--webs, --messages, --chats and --rounds must be at least 1")

    data_dir = tempfile.mkdtemp(prefix="aisystem-scale-")
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        database_url, version = stack.enter_context(scratch_database(args.database_url))
        env = run_env(data_dir, database_url, args.redis_url)
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        manage(env, "createcachetable")  # the cache without Redis (harmless with it)
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")  # whitenoise serves these
        token = manage(env, "createapitoken", "--name", "bench").strip().splitlines()[-1]
        base_url, fake_pid = stack.enter_context(fake_claude(env, args.ttft))
        env["ANTHROPIC_BASE_URL"] = base_url
        ports = [free_port() for _ in range(max(args.webs))]
        webs = [start_daphne(env, port) for port in ports]
        for web in webs:
            stack.callback(stop, web)
        redis = f"Redis {args.redis_url}" if args.redis_url else "no Redis"
        print(
            f"PostgreSQL {version}, database {urlsplit(database_url).path[1:]} (dropped at the "
            f"end); {redis}; {len(webs)} daphne processes (a run uses the first N; the others "
            f"idle); fake Claude echoing, ttft {args.ttft:g} s; {args.chats} chats, each "
            f"sending in turn; {args.messages} messages per run; {os.cpu_count()} CPUs, load "
            f"average {os.getloadavg()[0]:.1f} before the start",
            flush=True,
        )
        with psycopg.connect(database_url) as connection:
            postmaster = local_postmaster(connection)
        watched = Watched([web.pid for web in webs], fake_pid, postmaster)
        runs = asyncio.run(measure(args, token, ports, watched))
        summary(runs, args.webs)


if __name__ == "__main__":
    main()
