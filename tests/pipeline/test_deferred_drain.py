"""The deferred job drains its backlog as fast as Claude allows: one run answers until none
is left, several runs (workers) share the backlog, each chat's answers stay in order, and a
claim whose worker died is taken over once its lease has run out.

Everything is real: the database, the pipeline's agent and the anthropic SDK against the fake
Messages API on loopback. The rows are made as the pipeline leaves a deferred message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from aisystem.models import (
    CircuitBreaker,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
)
from pipeline import deferred
from pipeline.claude.client import ClaudeClient
from pipeline.deferred import OWNER_PREFIX, claims, deferred_answer, deferred_help, drain
from pipeline.fakeclaude import OVERLOADED, FakeClaude, Scenario
from pipeline.processor import UnifiedMessageProcessor
from tests.factories import ChatFactory, IdentityFactory, MessageFactory
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

ATTEMPTS = 2


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture(autouse=True)
def claude_settings(settings: Any) -> Iterator[None]:
    settings.ANTHROPIC_API_KEY = ""
    settings.CLAUDE = {
        **settings.CLAUDE,
        "MAX_ATTEMPTS": ATTEMPTS,
        "BACKOFF_BASE_SECONDS": 0.001,
        "BACKOFF_MAX_SECONDS": 0.001,
    }
    cache.clear()
    yield
    cache.clear()


def job_client(fake: FakeClaude) -> ClaudeClient:
    return ClaudeClient(base_url=fake.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep)


def backlog(chats: int, per_chat: int) -> dict[int, list[int]]:
    """Deferred messages, created round-robin over ``chats`` chats (so that ids interleave);
    returns each chat's message ids, oldest first."""
    people = [(ChatFactory(), IdentityFactory()) for _ in range(chats)]
    ids: dict[int, list[int]] = {chat.pk: [] for chat, _ in people}
    for n in range(per_chat):
        for chat, person in people:
            row = MessageFactory(
                chat=chat,
                identity=person,
                text=f"question {n} in {chat.title}",
                status=MessageStatus.DEFERRED,
                status_reason="claude_unavailable",
            )
            ids[chat.pk].append(row.pk)
    return ids


def answered_in_order(ids: dict[int, list[int]]) -> dict[int, list[int]]:
    """Per chat, the inbound ids in the order their replies were queued."""
    order: dict[int, list[int]] = {chat: [] for chat in ids}
    for item in OutboxItem.objects.order_by("pk"):
        order[item.chat_id].append(item.source_message_id)
    return order


def statuses() -> set[str]:
    return set(Message.objects.filter(direction=Direction.INBOUND).values_list("status", flat=True))


# -- one run ----------------------------------------------------------------------------------


def test_one_run_answers_the_whole_backlog_not_a_batch_of_it(fake_claude: FakeClaude) -> None:
    ids = backlog(chats=9, per_chat=5)  # 45: more than a run used to take (20)

    settled = deferred_answer(client=job_client(fake_claude), helpers=0)

    assert settled == 45
    assert statuses() == {MessageStatus.ANSWERED}
    assert OutboxItem.objects.count() == 45
    assert len(fake_claude.requests) == 45
    assert answered_in_order(ids) == ids


def test_a_chats_answers_come_one_at_a_time_each_seeing_the_one_before(
    fake_claude: FakeClaude,
) -> None:
    ids = backlog(chats=1, per_chat=3)

    assert deferred_answer(client=job_client(fake_claude), helpers=0, concurrency=4) == 3

    assert answered_in_order(ids) == ids
    last = fake_claude.requests[-1].body
    assert last is not None
    history = " ".join(str(turn["content"]) for turn in last["messages"])
    assert "You said: question 0" in history and "You said: question 1" in history


def test_a_run_stops_claiming_once_its_time_budget_is_spent(fake_claude: FakeClaude) -> None:
    backlog(chats=2, per_chat=2)

    assert deferred_answer(client=job_client(fake_claude), budget_seconds=0, helpers=0) == 0

    assert statuses() == {MessageStatus.DEFERRED}
    assert fake_claude.requests == []


def test_a_run_stops_after_one_message_while_claude_is_still_overloaded(
    fake_claude: FakeClaude,
) -> None:
    backlog(chats=5, per_chat=1)
    fake_claude.set_scenario(OVERLOADED)

    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 0

    assert len(fake_claude.requests) == ATTEMPTS  # one message tried, alone
    assert statuses() == {MessageStatus.DEFERRED}
    assert not Message.objects.exclude(lease_owner="").exists()


def test_a_live_half_open_probe_makes_the_run_wait(fake_claude: FakeClaude) -> None:
    backlog(chats=1, per_chat=1)
    CircuitBreaker.objects.create(
        service="anthropic",
        state=CircuitBreaker.State.HALF_OPEN,
        probe_started_at=timezone.now(),
        open_until=timezone.now() + timedelta(seconds=10),  # the probe's lease
    )

    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 0
    assert fake_claude.requests == []


def test_background_answers_are_left_to_their_own_task(fake_claude: FakeClaude) -> None:
    MessageFactory(status=MessageStatus.DEFERRED, status_reason="background")

    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 0
    assert fake_claude.requests == []


# -- many workers -----------------------------------------------------------------------------


def test_two_workers_share_the_backlog_and_answer_each_message_once(
    fake_claude: FakeClaude,
) -> None:
    fake_claude.set_scenario(Scenario(name="paced", time_to_first_token=0.02))
    ids = backlog(chats=6, per_chat=5)
    settled: list[int] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait(timeout=10)
            settled.append(deferred_answer(client=job_client(fake_claude), helpers=0))
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)

    assert sum(settled) == 30 and len(settled) == 2
    assert statuses() == {MessageStatus.ANSWERED}
    sources = list(OutboxItem.objects.values_list("source_message_id", flat=True))
    assert sorted(sources) == sorted(pk for chat in ids.values() for pk in chat)  # once each
    assert answered_in_order(ids) == ids
    assert len(fake_claude.requests) == 30


def test_a_large_backlog_queues_helper_runs_for_the_other_workers(
    fake_claude: FakeClaude, settings: Any
) -> None:
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    backlog(chats=10, per_chat=2)

    assert deferred_answer(client=job_client(fake_claude), concurrency=4) == 20

    queued = list(OrmQ.objects.all())
    assert [task.func() for task in queued] == [deferred.HELP_TASK] * 2  # one per other worker
    assert deferred_help() == 0  # this run left nothing for them


def test_a_small_backlog_queues_no_helpers(fake_claude: FakeClaude, settings: Any) -> None:
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    backlog(chats=3, per_chat=1)

    assert deferred_answer(client=job_client(fake_claude), concurrency=4) == 3
    assert not OrmQ.objects.exists()


# -- crashes ----------------------------------------------------------------------------------


def claimed_by_a_dead_worker(*, lease_left: timedelta) -> Message:
    """A message a deferred run claimed before its process was killed (kill -9)."""
    return MessageFactory(
        chat=ChatFactory(),
        identity=IdentityFactory(),
        text="answer me after all",
        status=MessageStatus.PROCESSING,
        status_reason="claude_unavailable",
        lease_owner=f"{OWNER_PREFIX}elsewhere:123:dead",
        lease_until=timezone.now() + lease_left,
    )


def test_a_claim_whose_worker_died_is_answered_once_its_lease_ran_out(
    fake_claude: FakeClaude,
) -> None:
    orphan = claimed_by_a_dead_worker(lease_left=-timedelta(seconds=1))
    later = MessageFactory(
        chat=orphan.chat,
        identity=orphan.identity,
        status=MessageStatus.DEFERRED,
        status_reason="claude_unavailable",
    )

    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 2

    orphan.refresh_from_db()
    assert (orphan.status, orphan.lease_owner, orphan.lease_until) == ("answered", "", None)
    assert answered_in_order({orphan.chat_id: [orphan.pk, later.pk]}) == {
        orphan.chat_id: [orphan.pk, later.pk]
    }


def test_a_claim_still_under_its_lease_is_left_alone_and_holds_back_its_chat(
    fake_claude: FakeClaude,
) -> None:
    busy = claimed_by_a_dead_worker(lease_left=timedelta(seconds=30))
    later = MessageFactory(
        chat=busy.chat,
        identity=busy.identity,
        status=MessageStatus.DEFERRED,
        status_reason="claude_unavailable",
    )
    elsewhere = MessageFactory(status=MessageStatus.DEFERRED, status_reason="claude_unavailable")

    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 1

    assert Message.objects.get(pk=busy.pk).status == MessageStatus.PROCESSING
    assert Message.objects.get(pk=later.pk).status == MessageStatus.DEFERRED
    assert Message.objects.get(pk=elsewhere.pk).status == MessageStatus.ANSWERED


def test_a_run_whose_lease_was_taken_over_records_nothing(fake_claude: FakeClaude) -> None:
    [[pk]] = backlog(chats=1, per_chat=1).values()
    first = claims.claim_next("deferred:first", timezone.now())
    assert first is not None
    # Its worker stalls past the lease; another run takes the message over and answers it.
    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 0  # still leased
    Message.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert deferred_answer(client=job_client(fake_claude), helpers=0) == 1

    processor = UnifiedMessageProcessor(client=job_client(fake_claude))
    late = async_to_sync(drain._answer)(processor, first)  # the stalled worker comes back

    assert late == "lost"
    assert OutboxItem.objects.count() == 1
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


def test_expired_claims_of_dead_workers_are_given_up_with_the_old_deferred_ones() -> None:
    stale = claimed_by_a_dead_worker(lease_left=-timedelta(minutes=1))
    Message.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=25))

    assert deferred.deferred_expire() == 1

    stale.refresh_from_db()
    assert (stale.status, stale.status_reason) == (MessageStatus.FAILED, "expired")
