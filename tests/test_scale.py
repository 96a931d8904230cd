"""The scaled mode as a system: PostgreSQL and Redis (started as CI starts them), two web
processes (daphne), two django-q2 clusters and the fake Messages API. 30 chats send 300
messages over REST; one web process and one worker are killed with ``kill -9`` mid-way.

Then every message is answered exactly once, each chat's answers come in order, and the live
feed (a staff socket on the surviving web process) and the webhooks (a verifying receiver)
saw every message. A client does what the README tells a REST integrator to do: it sends
each message with an ``Idempotency-Key``, sends it again (to the other web process) when its
connection fails, waits out a 409's ``Retry-After``, and repeats it until it is answered.

It runs on the PostgreSQL leg of the suite (``DATABASE_URL=postgres://… make test``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_q.tasks import async_task

from aisystem.models import AccessAction, AccessRule, Direction, Event, Message, MessageStatus
from aisystem.services.tokens import api_token_create
from aisystem.webhooks.services import webhook_subscription_create
from pipeline.fakeclaude import FakeClaude, Scenario
from tests.browser import daphne_args, log_tail, wait_for_port
from tests.conftest import PRIMARY_KEY, require_service
from tests.factories import UserFactory
from tests.helpers import ROOT, free_port, qcluster, subprocess_database_url
from tests.webhooks.receiver import Receiver, running_receiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHATS = 30
PER_CHAT = 10
KILL_AFTER = 100  # answers, before one web process and one worker are killed
LEASE_SECONDS = 4  # short leases, so the dead web process's messages are orphans soon
DEADLINE_SECONDS = 300


@pytest.fixture
def scaled_mode() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("runs on the PostgreSQL leg of the suite (DATABASE_URL=postgres://…)")
    redis_url = os.environ.get("REDIS_URL", "")
    require_service("Redis", bool(redis_url), "set REDIS_URL with DATABASE_URL")
    # Redis outlives the database flushes between tests: configuration an earlier test cached
    # there (the default workspace's id, say) would name rows that are gone.
    cache.clear()
    return redis_url


@contextmanager
def web_process(port: int, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            daphne_args(port), cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, process, log)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


class LiveFeed:
    """A staff socket on ``/ws/live/``, in a thread of its own, collecting event message ids."""

    def __init__(self, url: str, cookie: str) -> None:
        self.url, self.cookie = url, cookie
        self.message_ids: set[int] = set()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> LiveFeed:
        self._thread.start()
        assert self.connected.wait(30), f"the live feed did not connect: {self.error!r}"
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # shown by the assertions that wait for it
            self.error = error

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    async def _run(self) -> None:
        import websockets

        headers = {"Cookie": f"sessionid={self.cookie}", "Origin": "http://127.0.0.1"}
        async with websockets.connect(self.url, additional_headers=headers) as socket:
            self.connected.set()
            while not self._stop.is_set():
                try:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
                except TimeoutError:
                    continue
                for event in frame.get("events", []):
                    if event.get("message_id"):
                        self.message_ids.add(int(event["message_id"]))


class Client30:
    """What a REST integrator does, per the README: one chat's messages in turn, each with an
    Idempotency-Key, retried on another web process when the connection fails."""

    def __init__(self, ports: list[int], token: str) -> None:
        self.ports = ports
        self.alive = list(ports)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.answers: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.answered = 0
        self.reconnects = 0
        self._lock = threading.Lock()

    def kill(self, port: int) -> None:
        with self._lock:
            self.alive.remove(port)

    def chat(self, index: int) -> None:
        chat_id = f"chat-{index}"
        for number in range(PER_CHAT):
            text = f"{chat_id} message {number}"
            key = f"{chat_id}:{number}"
            body = self._send(index + number, chat_id, text, key)
            with self._lock:
                self.answers[chat_id].append((int(body["message_id"]), str(body["reply"])))
                self.answered += 1

    def _send(self, turn: int, chat_id: str, text: str, key: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            port = self.alive[turn % len(self.alive)]
            try:
                response = requests.post(
                    f"http://127.0.0.1:{port}/api/v1/messages",
                    json={"chat_id": chat_id, "user_id": chat_id, "text": text},
                    headers={**self.headers, "Idempotency-Key": key},
                    timeout=60,
                )
            except requests.RequestException:
                with self._lock:
                    self.reconnects += 1
                turn += 1  # the other web process
                time.sleep(0.2)
                continue
            if response.status_code == 409:
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] == "answered":
                return body
            assert body["status"] == "deferred", body  # an orphan, answered by a worker soon
            time.sleep(1)
        raise AssertionError(f"{key} was not answered in {DEADLINE_SECONDS} s")


@pytest.mark.timeout(600)
def test_two_web_and_two_workers_answer_300_messages_once_in_order_through_kill_9(
    scaled_mode: str, fake_claude: FakeClaude, tmp_path: Path, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    _, token = api_token_create(name="scale")
    staff = UserFactory(username="watcher", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_message"))
    browser = Client()
    browser.force_login(staff)
    # Each answer takes a moment, so that messages are in flight when the processes die.
    fake_claude.set_scenario(Scenario(name="thinking", time_to_first_token=0.3))
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": scaled_mode,
        "ANTHROPIC_BASE_URL": fake_claude.base_url,
        "ANTHROPIC_API_KEY": PRIMARY_KEY,
        "AISYSTEM_MESSAGE_LEASE_SECONDS": str(LEASE_SECONDS),
        "AISYSTEM_WEBHOOK_ALLOW_PRIVATE": "true",
        "AISYSTEM_WEBHOOK_LEASE_SECONDS": "30",  # the least: a killed worker's delivery resumes
        "Q_WORKERS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("web1", "web2", "worker1", "worker2")}
    client = Client30(ports, token)
    with ExitStack() as stack:
        receiver: Receiver = stack.enter_context(running_receiver())
        _, secret = webhook_subscription_create(
            name="scale", url=receiver.url, event_types=["message.answered"]
        )
        receiver.secrets.append(secret)
        web1 = stack.enter_context(web_process(ports[0], env, logs["web1"]))
        stack.enter_context(web_process(ports[1], env, logs["web2"]))
        worker1 = stack.enter_context(qcluster(logs["worker1"], env))
        stack.enter_context(qcluster(logs["worker2"], env))
        feed = stack.enter_context(
            LiveFeed(f"ws://127.0.0.1:{ports[1]}/ws/live/", browser.cookies["sessionid"].value)
        )
        try:
            with ThreadPoolExecutor(CHATS) as pool:
                chats = [pool.submit(client.chat, index) for index in range(CHATS)]
                while client.answered < KILL_AFTER:
                    failed = [chat.exception() for chat in chats if chat.done()]
                    assert not any(failed), failed
                    time.sleep(0.05)
                os.kill(web1.pid, signal.SIGKILL)
                os.killpg(worker1.pid, signal.SIGKILL)
                client.kill(ports[0])
                while not all(chat.done() for chat in chats):
                    # What the minutely schedules run, sooner: the orphan sweep, the deferred job.
                    async_task("aisystem.tasks.sweep_orphaned_messages")
                    async_task("aisystem.tasks.answer_deferred_messages")
                    async_task("aisystem.tasks.webhook_deliveries_due")
                    time.sleep(2)
                for chat in chats:
                    chat.result()
            inbound = list(Message.objects.filter(direction=Direction.INBOUND).order_by("pk"))
            inbound_ids = {row.pk for row in inbound}
            _wait(
                lambda: _webhooked(receiver) >= inbound_ids,
                "webhooks for every message",
                poke=lambda: async_task("aisystem.tasks.webhook_deliveries_due"),
            )
            _wait(lambda: feed.message_ids >= inbound_ids, "the live feed to see every message")
        except BaseException as error:
            said = "\n\n".join(f"{name}:\n{log_tail(log)}" for name, log in logs.items())
            raise AssertionError(f"{error}\n\n{said}") from error

    assert len(inbound) == CHATS * PER_CHAT  # one row per message, retries included
    assert {row.status for row in inbound} == {MessageStatus.ANSWERED}
    replies = Message.objects.filter(direction=Direction.OUTBOUND)
    per_message = defaultdict(list)
    for reply in replies:
        per_message[reply.reply_to_id].append(reply.text)
    assert all(len(per_message[row.pk]) == 1 for row in inbound), "a message answered twice"
    for chat_id, answers in client.answers.items():
        ids = [message_id for message_id, _ in answers]
        stored = list(
            replies.filter(chat__external_id__endswith=f":{chat_id}")
            .order_by("created_at", "pk")
            .values_list("reply_to_id", flat=True)
        )
        assert ids == sorted(ids) == stored, f"{chat_id} answered out of order"
        # The fake echoes: each answer names its own message, in the order they were sent.
        assert [f"message {n}" in reply for n, (_, reply) in enumerate(answers)] == [True] * 10
    orphaned = Event.objects.filter(kind="message.deferred", data__reason="orphaned").count()
    print(  # the figures for the closing note
        f"\nscale: {len(inbound)} messages, {orphaned} orphaned by the kill, "
        f"{client.reconnects} client reconnects, {len(receiver.received)} webhook requests",
        file=sys.stderr,
    )


def _webhooked(receiver: Receiver) -> set[int]:
    return {int(got.json["data"]["message_id"]) for got in list(receiver.received)}


def _wait(condition: Any, what: str, timeout: float = 180, poke: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if poke is not None:
            poke()  # what a minutely schedule runs, sooner
        time.sleep(2)
