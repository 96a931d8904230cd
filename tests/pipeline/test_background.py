"""Background answers: ``/bg <task>`` and large PDFs are answered by a django-q2 task.

Everything runs for real: the pipeline, the database, the job queue's broker table, and the
anthropic SDK against the fake Messages API on loopback. The task is called the way a
worker calls it (``tests/pipeline/test_background_cluster.py`` runs real workers).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client, override_settings
from django.utils import timezone
from django_q.models import OrmQ

from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    Direction,
    Event,
    HeldAttachment,
    Message,
    MessageStatus,
    OutboxItem,
)
from aisystem.services.tokens import api_token_create
from pipeline import background
from pipeline.background import (
    BACKGROUND,
    WORKING_ON_IT,
    background_answer,
    background_cancel,
    background_sweep,
)
from pipeline.claude.client import ClaudeClient
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import OVERLOADED, FakeClaude, Scenario
from pipeline.processor import UnifiedMessageProcessor
from pipeline.types import Attachment, InboundMessage, ProcessingResult
from tests.fakes.transport import RecordingTransport
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

_ids = itertools.count(1)
# A real (minimal) PDF padded past the 1 MB at which a PDF goes to the background.
BIG_PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"%" * (1024 * 1024)


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture(autouse=True)
def allow_everyone() -> Iterator[AccessRule]:
    yield AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)


def client_for(fake: FakeClaude) -> ClaudeClient:
    return ClaudeClient(base_url=fake.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep)


def message(text: str, *, attachments: tuple[Attachment, ...] = ()) -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id="42",
        chat_type=ChatType.PRIVATE,
        message_id=str(next(_ids)),
        sender_id="7",
        sender_name="Ada Lovelace",
        sent_at=timezone.now(),
        text=text,
        attachments=attachments,
    )


def send(fake: FakeClaude, msg: InboundMessage, transport: RecordingTransport) -> ProcessingResult:
    processor = UnifiedMessageProcessor(client=client_for(fake))
    return async_to_sync(processor.process_message)(msg, transport)


def queued_tasks() -> list[tuple[str, tuple[Any, ...]]]:
    """The tasks in django-q2's broker table, as (function, args)."""
    return [(item.task["func"], tuple(item.task["args"])) for item in OrmQ.objects.order_by("pk")]


def test_bg_says_working_on_it_and_one_task_answers_the_task_once(fake_claude: FakeClaude) -> None:
    transport = RecordingTransport()

    result = send(fake_claude, message("/bg summarise the open issues"), transport)

    assert (result.status, result.reason, result.reply) == ("deferred", BACKGROUND, WORKING_ON_IT)
    assert transport.texts == [WORKING_ON_IT]
    assert fake_claude.requests == []  # nothing asked of Claude while the sender waited
    inbound = Message.objects.get(pk=result.message_id)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.DEFERRED, BACKGROUND)
    assert queued_tasks() == [(background.TASK, (inbound.pk,))]

    assert background_answer(inbound.pk, client=client_for(fake_claude)) == "ok"
    assert background_answer(inbound.pk, client=client_for(fake_claude)) == "taken"

    inbound.refresh_from_db()
    assert (inbound.status, inbound.status_reason, inbound.lease_owner) == (
        MessageStatus.ANSWERED,
        BACKGROUND,
        "",
    )
    (request,) = fake_claude.requests
    assert request.body is not None
    assert request.body["messages"][-1]["content"][-1]["text"] == "summarise the open issues"
    item = OutboxItem.objects.get()
    assert item.idempotency_key == f"background:{inbound.pk}"
    assert "summarise the open issues" in item.text  # the fake echoes the task
    assert item.reply_to_transport_message_id == inbound.transport_message_id
    answer = Message.objects.get(
        direction=Direction.OUTBOUND, reply_to=inbound, status="processing"
    )
    assert answer.text == item.text
    event = Event.objects.filter(kind="message.answered").get()
    assert event.data["background"] is True and event.data["queued"] is True


def test_bg_alone_explains_itself_and_queues_nothing(fake_claude: FakeClaude) -> None:
    transport = RecordingTransport()

    result = send(fake_claude, message("/bg"), transport)

    assert result.status == "answered"
    assert "/bg summarise" in transport.texts[0]
    assert queued_tasks() == []


def test_a_large_pdf_is_answered_in_the_background_with_its_content(
    fake_claude: FakeClaude,
) -> None:
    transport = RecordingTransport()
    pdf = Attachment(
        kind="document", mime_type="application/pdf", file_name="report.pdf", data=BIG_PDF
    )

    result = send(fake_claude, message("what does it say?", attachments=(pdf,)), transport)

    assert transport.texts == [WORKING_ON_IT]
    held = HeldAttachment.objects.get()
    assert (held.file_name, bytes(held.data)) == ("report.pdf", BIG_PDF)

    assert background_answer(result.message_id or 0, client=client_for(fake_claude)) == "ok"

    (request,) = fake_claude.requests
    assert request.block_types[-2:] == ["document", "text"]
    assert not HeldAttachment.objects.exists()  # kept only until it was answered


def test_a_small_pdf_is_answered_while_the_sender_waits(fake_claude: FakeClaude) -> None:
    transport = RecordingTransport()
    pdf = Attachment(
        kind="document", mime_type="application/pdf", file_name="r.pdf", data=BIG_PDF[:60]
    )

    result = send(fake_claude, message("what does it say?", attachments=(pdf,)), transport)

    assert result.status == "answered"
    assert queued_tasks() == []


def test_cancel_before_the_task_runs_stops_it_for_good(fake_claude: FakeClaude) -> None:
    transport = RecordingTransport()
    queued = send(fake_claude, message("/bg write a long report"), transport)

    cancelled = send(fake_claude, message("/cancel"), transport)

    assert "Cancelled the background task “write a long report”." in cancelled.reply
    assert background_answer(queued.message_id or 0, client=client_for(fake_claude)) == "taken"
    assert fake_claude.requests == []
    inbound = Message.objects.get(pk=queued.message_id)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.FAILED, "cancelled")
    assert not OutboxItem.objects.exists()
    failed = Event.objects.filter(kind="message.failed", message_id=inbound.pk).get()
    assert failed.data["reason"] == "cancelled"


def test_cancel_while_it_runs_stops_the_model_call_and_records_nothing(
    fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(background, "RENEW_EVERY_SECONDS", 0.1)
    fake_claude.set_scenario(Scenario(name="slow", time_to_first_token=20.0))
    transport = RecordingTransport()
    queued = send(fake_claude, message("/bg think hard"), transport)
    pk = queued.message_id or 0
    outcome: list[str] = []
    worker = threading.Thread(
        target=lambda: outcome.append(background_answer(pk, client=client_for(fake_claude)))
    )
    worker.start()
    deadline = time.monotonic() + 30
    while not fake_claude.requests:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    inbound = Message.objects.get(pk=pk)
    assert inbound.status == MessageStatus.PROCESSING and inbound.lease_owner
    cancelled = background_cancel(chat_pk=inbound.chat_id, identity_id=inbound.identity_id or 0)
    worker.join(timeout=30)

    assert cancelled == ["think hard"]
    assert outcome == ["lost"]
    inbound.refresh_from_db()
    assert (inbound.status, inbound.status_reason) == (MessageStatus.FAILED, "cancelled")
    assert not OutboxItem.objects.exists()
    assert not Message.objects.filter(direction=Direction.OUTBOUND, reply_to=inbound).exclude(
        text=WORKING_ON_IT
    )


def test_while_claude_is_overloaded_it_waits_and_the_sweep_queues_it_again(
    fake_claude: FakeClaude,
) -> None:
    transport = RecordingTransport()
    queued = send(fake_claude, message("/bg plan my week"), transport)
    pk = queued.message_id or 0
    OrmQ.objects.all().delete()
    fake_claude.set_scenario(OVERLOADED)

    assert background_answer(pk, client=client_for(fake_claude)) == "unavailable"

    inbound = Message.objects.get(pk=pk)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.DEFERRED, BACKGROUND)
    assert background_sweep() == 0  # it is tried again a minute later, not at once
    assert deferred_answer(client=client_for(fake_claude)) == 0  # not the deferred job's
    assert background_sweep(now=timezone.now() + timedelta(minutes=2)) == 1
    assert queued_tasks() == [(background.TASK, (pk,))]

    fake_claude.reset()
    assert background_answer(pk, client=client_for(fake_claude)) == "ok"
    assert OutboxItem.objects.count() == 1


def test_the_sweep_takes_over_an_answer_whose_worker_died_and_the_dead_one_records_nothing(
    fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stops renewing (here: it is stuck, as a killed one would be) loses the
    message to the sweep; the answer is given once, by the worker that took it over."""
    monkeypatch.setattr(background, "RENEW_EVERY_SECONDS", 3600.0)  # the first never renews
    fake_claude.set_scenario(Scenario(name="slow", time_to_first_token=1.5), times=1)
    transport = RecordingTransport()
    queued = send(fake_claude, message("/bg draft the minutes"), transport)
    pk = queued.message_id or 0
    OrmQ.objects.all().delete()
    first: list[str] = []
    stuck = threading.Thread(
        target=lambda: first.append(background_answer(pk, client=client_for(fake_claude)))
    )
    stuck.start()
    deadline = time.monotonic() + 30
    while not fake_claude.requests:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    dead_owner = Message.objects.get(pk=pk).lease_owner

    later = timezone.now() + background.LEASE + timedelta(seconds=1)
    assert background_sweep(now=later) == 1
    assert background_answer(pk, client=client_for(fake_claude)) == "ok"
    stuck.join(timeout=30)

    assert first == ["lost"]
    assert dead_owner
    assert OutboxItem.objects.count() == 1
    assert Message.objects.filter(direction=Direction.OUTBOUND, reply_to_id=pk).count() == 2
    assert Event.objects.filter(kind="message.answered", message_id=pk).count() == 1


def test_a_background_message_lost_before_its_task_was_queued_is_swept_up(
    fake_claude: FakeClaude,
) -> None:
    transport = RecordingTransport()
    queued = send(fake_claude, message("/bg tidy my notes"), transport)
    OrmQ.objects.all().delete()  # as if the process died between the record and the enqueue

    assert background_sweep() == 0  # a queued task is given time to run
    assert background_sweep(now=timezone.now() + background.QUEUED_GRACE * 2) == 1
    assert queued_tasks() == [(background.TASK, (queued.message_id,))]


def test_a_rest_caller_finds_the_background_answer_in_the_history_and_its_webhook_event(
    fake_claude: FakeClaude,
) -> None:
    _, plaintext = api_token_create(name="integration")
    headers = {"Authorization": f"Bearer {plaintext}"}
    client = Client()
    body = {"chat_id": "c1", "user_id": "u1", "text": "/bg compare the two offers"}
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        posted = client.post("/api/v1/messages", body, "application/json", headers=headers)
        assert (posted.status_code, posted.json()["status"], posted.json()["reply"]) == (
            200,
            "deferred",
            WORKING_ON_IT,
        )
        pk = posted.json()["message_id"]
        assert background_answer(pk, client=client_for(fake_claude)) == "ok"

    items = client.get("/api/v1/chats/c1/messages", headers=headers).json()["items"]
    assert [(item["direction"], item["status"]) for item in items] == [
        ("in", "answered"),
        ("out", "delivered"),
        ("out", "delivered"),
    ]
    assert items[1]["text"] == WORKING_ON_IT
    assert "compare the two offers" in items[2]["text"]
    assert not OutboxItem.objects.exists()  # REST has no one to push to: the history is it
    event = Event.objects.filter(kind="message.answered", message_id=pk).get()
    assert event.data["text"] == items[2]["text"]  # what the chat's webhook carries
