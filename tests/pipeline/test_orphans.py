"""Leases and orphans: every message being processed is leased to its process, renewed by a
heartbeat; the sweep hands a dead process's messages to the deferred job, which answers each
once. The last test kills a real web process (daphne) mid-request with ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import override_settings
from django.utils import timezone

from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    Direction,
    Event,
    Message,
    MessageStatus,
)
from aisystem.services import leases
from aisystem.services.leases import lease_length, lease_owner, leases_renew
from aisystem.services.tokens import api_token_create
from pipeline import outcomes
from pipeline.admission import admit
from pipeline.claude.client import ClaudeClient
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import FakeClaude, Scenario
from pipeline.orphans import ORPHANED, UNLEASED_AFTER, orphans_sweep
from pipeline.security_gate import SecurityGate
from pipeline.types import InboundMessage
from tests.browser import daphne_args, wait_for_port
from tests.factories import MessageFactory
from tests.helpers import ROOT, free_port, subprocess_database_url
from tests.pipeline.conftest import PRIMARY_KEY

GATE = SecurityGate(stale_after_seconds=3600, max_input_chars=10_000)


def inbound(transport: str = "api", message_id: str = "m1") -> InboundMessage:
    return InboundMessage(
        transport=transport,
        chat_id="c1",
        chat_type=ChatType.API if transport == "api" else ChatType.PRIVATE,
        message_id=message_id,
        sender_id="u1",
        sender_name="Ada",
        sent_at=timezone.now(),
        text="hello",
    )


def processing(owner: str, *, lease_for: float, **fields: Any) -> Message:
    """A message being answered by ``owner``, whose lease ends ``lease_for`` s from now."""
    until = timezone.now() + timedelta(seconds=lease_for)
    message: Message = MessageFactory(
        status=MessageStatus.PROCESSING, lease_owner=owner, lease_until=until, **fields
    )
    return message


@pytest.mark.django_db
def test_admission_leases_the_message_to_this_process_and_the_outcome_ends_the_lease() -> None:
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    now = timezone.now()

    api = admit(inbound("api"), gate=GATE, now=now)
    telegram = admit(inbound("telegram"), gate=GATE, now=now)

    rest_row = Message.objects.get(pk=api.message_pk)
    assert rest_row.lease_owner == lease_owner("web") and rest_row.lease_owner.startswith("web:")
    assert rest_row.lease_until == now + lease_length()
    assert Message.objects.get(pk=telegram.message_pk).lease_owner.startswith("bridge:")
    outcomes.message_mark(message_pk=rest_row.pk, status=MessageStatus.DEFERRED)
    rest_row.refresh_from_db()
    assert (rest_row.lease_owner, rest_row.lease_until) == ("", None)


@pytest.mark.django_db
def test_the_heartbeat_renews_only_this_processes_unfinished_messages() -> None:
    mine = processing(lease_owner("web"), lease_for=1)
    done = processing(lease_owner("web"), lease_for=1)
    Message.objects.filter(pk=done.pk).update(status=MessageStatus.ANSWERED)
    theirs = processing("web:elsewhere:1:abcd", lease_for=1)
    later = timezone.now() + timedelta(seconds=20)

    assert leases_renew(now=later) == 1

    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.lease_until == later + lease_length()
    assert theirs.lease_until is not None and theirs.lease_until < later


@pytest.mark.django_db
def test_the_heartbeat_thread_starts_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(leases, "_heartbeat_pid", None)
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread.name))

    leases.heartbeat_ensure(), leases.heartbeat_ensure()

    assert started == ["lease-heartbeat"]


@pytest.mark.django_db
def test_the_sweep_takes_expired_leases_once_and_leaves_the_living_and_the_self_recovering() -> (
    None
):
    dead = processing("web:deadhost:1:abcd", lease_for=-1)
    alive = processing("worker:host:2:ef01", lease_for=20)
    background = processing("", lease_for=-1, status_reason="background")
    prompt = processing("", lease_for=-1, status_reason="reminder")
    old_unleased = MessageFactory(
        status=MessageStatus.PROCESSING, created_at=timezone.now() - UNLEASED_AFTER * 2
    )
    new_unleased = MessageFactory(status=MessageStatus.PROCESSING)

    assert orphans_sweep() == 2
    assert orphans_sweep() == 0

    def state(row: Message) -> tuple[str, str]:
        row.refresh_from_db()
        return row.status, row.status_reason

    assert state(dead) == state(old_unleased) == (MessageStatus.DEFERRED, ORPHANED)
    assert {state(row)[0] for row in (alive, background, prompt, new_unleased)} == {"processing"}
    event = Event.objects.get(message=dead)
    assert (event.kind, event.data["reason"], event.data["orphaned_from"]) == (
        "message.deferred",
        ORPHANED,
        "web",
    )


@pytest.mark.django_db
def test_a_bridge_start_interrupts_its_predecessors_messages_but_not_a_live_workers() -> None:
    predecessor = processing("bridge:host:1:abcd", lease_for=20, transport="telegram")
    worker = processing("worker:host:2:ef01", lease_for=20, transport="telegram")

    assert outcomes.messages_mark_orphans_interrupted(transport="telegram") == 1

    predecessor.refresh_from_db(), worker.refresh_from_db()
    assert (predecessor.status, worker.status) == (MessageStatus.INTERRUPTED, "processing")


# --- A real web process killed mid-request -----------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_rest_message_whose_web_process_was_killed_is_answered_once_into_its_history(
    fake_claude: FakeClaude, tmp_path: Path
) -> None:
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    _, token = api_token_create(name="integration")
    fake_claude.set_scenario(Scenario(name="held", time_to_first_token=120.0), times=1)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "ANTHROPIC_BASE_URL": fake_claude.base_url,
        "ANTHROPIC_API_KEY": PRIMARY_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "daphne.log"
    url = f"http://127.0.0.1:{port}/api/v1/messages"
    body = {"chat_id": "c1", "user_id": "u1", "text": "plan the offsite"}
    headers = {"Authorization": f"Bearer {token}"}
    with log.open("wb") as output:
        web = subprocess.Popen(
            daphne_args(port), cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, web, log)
            client = threading.Thread(
                target=_post_expecting_a_dead_server, args=(url, body, headers)
            )
            client.start()
            deadline = time.monotonic() + 60
            while not fake_claude.requests:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            os.kill(web.pid, signal.SIGKILL)
            web.wait(timeout=30)
            client.join(timeout=30)
        finally:
            if web.poll() is None:
                web.kill()
    row = Message.objects.get(direction=Direction.INBOUND)
    assert row.status == MessageStatus.PROCESSING and row.lease_owner.startswith("web:")

    assert orphans_sweep() == 0  # its lease has not run out yet
    after_the_lease = timezone.now() + lease_length() + timedelta(seconds=1)
    assert orphans_sweep(now=after_the_lease) == 1
    with override_settings(ANTHROPIC_API_KEY=PRIMARY_KEY):
        client_for_job = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
        assert deferred_answer(client=client_for_job) == 1
        assert deferred_answer(client=client_for_job) == 0

    row.refresh_from_db()
    assert row.status == MessageStatus.ANSWERED
    (answer,) = Message.objects.filter(direction=Direction.OUTBOUND, reply_to=row)
    assert "plan the offsite" in answer.text  # the fake echoes
    assert len(fake_claude.requests) == 2
    answered = Event.objects.get(kind="message.answered", message=row)
    assert answered.data["text"] == answer.text  # what the chat's webhook carries


def _post_expecting_a_dead_server(url: str, body: dict[str, str], headers: dict[str, str]) -> None:
    try:
        requests.post(url, json=body, headers=headers, timeout=60)
    except requests.ConnectionError:
        return  # the server died under it, as it should in this test
    raise AssertionError("the killed server answered")
