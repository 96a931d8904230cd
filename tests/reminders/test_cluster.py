"""A scheduled prompt survives a worker killed with ``kill -9`` mid-answer: real django-q2
clusters, the fake Messages API holding the first call open, and a second cluster that
claims the occurrence once the dead worker's claim has run out. One answer goes out."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task

from aisystem.models import Direction, Event, Message, OutboxItem, Reminder, ReminderStatus
from pipeline.fakeclaude import FakeClaude, Scenario
from pipeline.reminders.commands import remind_command
from tests.helpers import qcluster
from tests.pipeline.conftest import PRIMARY_KEY
from tests.reminders.conftest import person

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(condition: Callable[[], bool], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_a_prompt_cut_short_by_kill_9_is_answered_once_after_the_claim_runs_out(
    fake_claude: FakeClaude, tmp_path: Path
) -> None:
    ann, chat = person()
    remind_command(
        args="every day 07:00 the news", identity_id=ann.pk, chat_pk=chat.pk, now=timezone.now()
    )
    prompt = Reminder.objects.get()
    Reminder.objects.filter(pk=prompt.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    env = {"ANTHROPIC_BASE_URL": fake_claude.base_url, "ANTHROPIC_API_KEY": PRIMARY_KEY}
    fake_claude.set_scenario(Scenario(name="held", time_to_first_token=120.0), times=1)

    first_log = tmp_path / "first.log"
    with qcluster(first_log, env) as first:
        async_task("aisystem.tasks.deliver_due_reminders")  # what the minutely schedule runs
        wait_until(lambda: len(fake_claude.requests) == 1, first_log)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    prompt.refresh_from_db()
    assert prompt.claimed_until is not None and not OutboxItem.objects.exists()

    # Time passes: the dead worker's claim runs out.
    Reminder.objects.filter(pk=prompt.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    OrmQ.objects.all().delete()
    second_log = tmp_path / "second.log"
    with qcluster(second_log, env):
        async_task("aisystem.tasks.deliver_due_reminders")
        wait_until(lambda: OutboxItem.objects.exists(), second_log)

    assert len(fake_claude.requests) == 2
    (item,) = OutboxItem.objects.all()
    assert "the news" in item.text  # the fake echoes the prompt
    asked = Message.objects.get(chat=chat, direction=Direction.INBOUND)
    assert Message.objects.filter(direction=Direction.OUTBOUND, reply_to=asked).count() == 1
    assert Event.objects.filter(kind="reminder.sent").count() == 1
    prompt.refresh_from_db()
    assert prompt.status == ReminderStatus.ACTIVE and prompt.due_at > timezone.now()
