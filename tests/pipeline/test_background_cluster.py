"""A background answer survives a worker killed with ``kill -9`` mid-answer: real django-q2
clusters, the fake Messages API holding the first call open, and a second cluster that
takes the message over once the dead worker's lease has run out. The person gets one answer.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task

from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    Direction,
    Event,
    Message,
    MessageStatus,
    OutboxItem,
)
from pipeline.background import BACKGROUND, WORKING_ON_IT
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import FakeClaude, Scenario
from pipeline.processor import UnifiedMessageProcessor
from pipeline.types import InboundMessage
from tests.fakes.transport import RecordingTransport
from tests.helpers import qcluster
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(condition: object, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_a_background_answer_cut_short_by_kill_9_is_answered_once_by_another_worker(
    fake_claude: FakeClaude, tmp_path: Path
) -> None:
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    processor = UnifiedMessageProcessor(
        client=ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    )
    transport = RecordingTransport()
    question = InboundMessage(
        transport="telegram",
        chat_id="42",
        chat_type=ChatType.PRIVATE,
        message_id="1",
        sender_id="7",
        sender_name="Ada Lovelace",
        sent_at=timezone.now(),
        text="/bg list the risks in the launch plan",
    )
    result = async_to_sync(processor.process_message)(question, transport)
    assert transport.texts == [WORKING_ON_IT]
    pk = result.message_id
    env = {"ANTHROPIC_BASE_URL": fake_claude.base_url, "ANTHROPIC_API_KEY": PRIMARY_KEY}
    fake_claude.set_scenario(Scenario(name="held", time_to_first_token=120.0), times=1)

    first_log = tmp_path / "first.log"
    with qcluster(first_log, env) as first:
        wait_until(lambda: len(fake_claude.requests) == 1, first_log)
        wait_until(lambda: Message.objects.get(pk=pk).lease_owner != "", first_log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    inbound = Message.objects.get(pk=pk)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.PROCESSING, BACKGROUND)
    assert not OutboxItem.objects.exists()

    # Time passes: the dead worker's lease runs out. (django-q2 would also hand its task to
    # another worker, but only after Q_CLUSTER["retry"], minutes later; the sweep is sooner.)
    Message.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    OrmQ.objects.all().delete()
    second_log = tmp_path / "second.log"
    with qcluster(second_log, env):
        async_task("aisystem.tasks.sweep_background_answers")  # what the minutely schedule runs
        wait_until(lambda: Message.objects.get(pk=pk).status == MessageStatus.ANSWERED, second_log)

    assert len(fake_claude.requests) == 2
    (item,) = OutboxItem.objects.all()
    assert "list the risks in the launch plan" in item.text
    replies = Message.objects.filter(direction=Direction.OUTBOUND, reply_to_id=pk)
    assert sorted(reply.text == WORKING_ON_IT for reply in replies) == [False, True]
    assert Event.objects.filter(kind="message.answered", message_id=pk).count() == 1
