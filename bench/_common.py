"""What the benchmarks share: Django on a scratch database, fake Claude in a process of its own,
a transport that delivers nowhere, and how a target is reported.

Not a benchmark. A bench script puts the repository root first on ``sys.path`` (ahead of
``bench/``, whose ``pipeline.py`` would otherwise hide the ``pipeline`` package) and imports
this as ``bench._common``. Run as a script, it is the fake Claude process ``with_fake_claude``
starts: it prints the fake's base URL and serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-ant-bench"  # the API key fake Claude accepts
SERVICE_URLS = ("DATABASE_URL", "REDIS_URL")


def bench_env(data_dir: str, *, redis_url: str = "") -> dict[str, str]:
    """This process's environment for a bench process on the scratch data directory
    ``data_dir``: DATABASE_URL and REDIS_URL dropped (``redis_url`` instead, when given), so the
    figures are for SQLite and the developer's data is never touched; DEBUG off (it keeps every
    query in memory); logs at WARNING unless LOG_LEVEL says otherwise (httpx and the fake log a
    line per request at INFO); the repository importable."""
    env = {name: value for name, value in os.environ.items() if name not in SERVICE_URLS}
    env.update(
        AISYSTEM_DATA_DIR=data_dir,
        DEBUG="false",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(ROOT),
    )
    env.setdefault("DJANGO_SETTINGS_MODULE", "aisystem.settings")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def setup_django(data_dir: str | None = None, *, keep_services: bool = False) -> str:
    """Set this process up on ``bench_env(data_dir)`` (a new temporary directory when None),
    then ``django.setup()``, migrate and create the cache table; return the data directory.

    ``keep_services``: keep DATABASE_URL and REDIS_URL when they are set, to measure that
    database instead of the scratch one (``rate_limits.py`` does)."""
    data_dir = data_dir or tempfile.mkdtemp(prefix="aisystem-bench-")
    env = bench_env(data_dir)
    if keep_services:
        env.update({name: os.environ[name] for name in SERVICE_URLS if name in os.environ})
    for name in SERVICE_URLS:
        os.environ.pop(name, None)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # without Redis the cache is the database one
    return data_dir


def with_fake_claude(workload: str, body: Callable[[str], Awaitable[None]]) -> None:
    """Set Django up on a scratch database (``setup_django``), print what is measured (the
    database, ``workload``, the CPUs), then run ``body(base_url)`` with fake Claude served by
    this module in its own process (so its CPU is not counted as the gateway's); the fake stops
    when the body ends."""
    data_dir = setup_django()
    from django.db import connection

    print(
        f"database: {connection.vendor} in {data_dir}; {workload}; fake Claude in its own "
        f"process, echoing with no latency; {os.cpu_count()} CPUs"
    )
    fake = subprocess.Popen(
        [sys.executable, __file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = fake.stdin, fake.stdout
    if stdin is None or stdout is None:  # not with PIPE; this narrows the types
        raise RuntimeError("the fake's pipes are missing")
    try:
        asyncio.run(body(stdout.readline().strip()))
    finally:
        stdin.close()
        fake.wait(timeout=30)


def serve_fake() -> None:
    """The fake in its own process, as Claude would be: its CPU is not the gateway's. Prints
    its base URL, serves until stdin closes."""
    from pipeline.fakeclaude import FakeClaude

    with FakeClaude(api_keys=[KEY]) as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()


class NullTransport:
    """A Telegram-shaped transport that delivers nowhere, instantly."""

    name = "telegram"
    text_format: Literal["telegram_html", "markdown"] = "telegram_html"
    max_message_length = 4096
    streams = False
    edit_interval_seconds = 0.0

    def __init__(self) -> None:
        self._ids = itertools.count(10**6)

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        return str(next(self._ids))

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        return None

    async def send_typing(self, chat_id: str) -> None:
        return None

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        return None

    async def send_media(
        self, chat_id: str, media: Any, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        return await self.send_text(chat_id, caption, reply_to=reply_to)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    serve_fake()
