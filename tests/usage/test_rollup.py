"""The daily usage rollup: written with each outcome, safe under concurrent writers, rebuilt
from the stored messages on request."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, connections, transaction
from django.utils import timezone

from aisystem.models import (
    ChatType,
    DailyUsage,
    Direction,
    Identity,
    Message,
    MessageStatus,
)
from aisystem.services.usage import usage_add, usage_day, usage_rebuild
from pipeline.processor import UnifiedMessageProcessor
from tests.factories import (
    ConversationFactory,
    IdentityFactory,
    MessageFactory,
    WorkspaceFactory,
)
from tests.helpers import ROOT, subprocess_database_url
from tests.usage.conftest import FileRecordingTransport, message

TODAY = usage_day(timezone.now())


def row_of(identity: Identity) -> DailyUsage:
    return DailyUsage.objects.get(identity=identity)


# --- Written with each outcome -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_answer_is_counted_with_the_tokens_and_cost_of_its_reply(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    first = await processor.process_message(message("What is 2+2?"), FileRecordingTransport())
    second = await processor.process_message(message("And 3+3?"), FileRecordingTransport())

    identity = await Identity.objects.aget(external_id="7")
    row = await DailyUsage.objects.select_related("workspace").aget(identity=identity)
    replies = [m async for m in Message.objects.filter(direction=Direction.OUTBOUND)]
    assert (first.status, second.status) == ("answered", "answered")
    assert (row.day, row.messages, row.failed) == (TODAY, 2, 0)
    assert row.input_tokens == sum(r.input_tokens for r in replies) > 0
    assert row.output_tokens == sum(r.output_tokens for r in replies) > 0
    assert row.cost_usd == sum(r.cost_usd for r in replies) == first.cost_usd + second.cost_usd
    assert row.workspace.is_default


class Unreachable(FileRecordingTransport):
    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        raise ConnectionError("the chat is gone")


@pytest.mark.django_db(transaction=True)
async def test_an_answer_that_could_not_be_delivered_is_counted_as_failed(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    result = await processor.process_message(message("hi"), Unreachable())

    row = await DailyUsage.objects.aget()
    assert result.status == "failed"
    assert (row.messages, row.failed) == (0, 1)
    assert row.input_tokens > 0  # the model was paid for all the same


@pytest.mark.django_db(transaction=True)
async def test_a_group_message_not_meant_for_the_assistant_writes_no_usage(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    chatter = message("lunch at noon?", chat_id="-100", chat_type=ChatType.SUPERGROUP)

    result = await processor.process_message(chatter, FileRecordingTransport())

    assert result.status == "ignored"
    assert await DailyUsage.objects.acount() == 0


# --- Concurrent writers --------------------------------------------------------------------

ADDS = 40
_ADDER = """
import sys, time
from decimal import Decimal
from datetime import date
from aisystem.services.usage import usage_add
day, start = date.fromisoformat(sys.argv[1]), float(sys.argv[4])
workspace, identity = int(sys.argv[2]), int(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
for _ in range({adds}):
    usage_add(day=day, workspace_id=workspace, identity_id=identity, messages=1,
              input_tokens=10, output_tokens=5, cost_usd=Decimal("0.001"))
print("done")
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_adding_to_one_new_row_lose_nothing(tmp_path: Any) -> None:
    """Both start on a row that does not exist yet, at the same moment: one inserts it, the
    other's insert loses the race and adds to it; every later add goes through F()."""
    workspace, identity = WorkspaceFactory(), IdentityFactory()
    script = tmp_path / "adder.py"
    script.write_text(_ADDER.format(adds=ADDS))
    start = time.time() + 3  # both processes are set up by then and begin together
    env = {"DATABASE_URL": subprocess_database_url()}
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "shell",
                "-c",
                f"import sys; sys.argv = ['x', '{TODAY}', '{workspace.pk}', '{identity.pk}', "
                f"'{start}']; exec(open({str(script)!r}).read())",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]

    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and out.strip().endswith("done"), err
    row = DailyUsage.objects.get()
    assert (row.messages, row.input_tokens, row.output_tokens) == (2 * ADDS, 20 * ADDS, 10 * ADDS)
    assert row.cost_usd == Decimal("0.001") * 2 * ADDS


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_insert_loses_the_race_adds_to_the_winners_row() -> None:
    """The winner has inserted the day's row but not committed: the other worker's UPDATE
    finds nothing, its INSERT waits on the unique key (PostgreSQL; SQLite makes it wait at
    BEGIN) and then fails, and its second UPDATE adds to the committed row."""
    workspace, identity = WorkspaceFactory(), IdentityFactory()
    key = {"day": TODAY, "workspace_id": workspace.pk, "identity_id": identity.pk}
    inserted, done = threading.Event(), []

    def winner() -> None:
        try:
            with transaction.atomic():
                usage_add(**key, messages=1, input_tokens=10)
                inserted.set()
                time.sleep(1)  # the loser runs into this uncommitted row meanwhile
        finally:
            connections.close_all()

    def loser() -> None:
        try:
            inserted.wait(10)
            usage_add(**key, messages=2, input_tokens=20)
            done.append("loser")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=winner), threading.Thread(target=loser)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    row = DailyUsage.objects.get()
    assert done == ["loser"]
    assert (row.messages, row.input_tokens) == (3, 30)


@pytest.mark.django_db
def test_adding_to_an_existing_row_adds_and_a_new_key_gets_a_row_of_its_own() -> None:
    workspace, identity = WorkspaceFactory(), IdentityFactory()
    key = {"workspace_id": workspace.pk, "identity_id": identity.pk}

    usage_add(day=TODAY, **key, messages=1, input_tokens=100, cost_usd=Decimal("0.01"))
    usage_add(day=TODAY, **key, failed=1, output_tokens=7, cost_usd=Decimal("0.02"))
    usage_add(day=TODAY - timedelta(days=1), **key, messages=3)

    today = DailyUsage.objects.get(day=TODAY)
    assert (today.messages, today.failed, today.input_tokens, today.output_tokens) == (1, 1, 100, 7)
    assert today.cost_usd == Decimal("0.03")
    assert DailyUsage.objects.get(day=TODAY - timedelta(days=1)).messages == 3


# --- Rebuilding from the stored messages -----------------------------------------------------


def exchange(identity: Identity, conversation: Any, at: Any, *, tokens: int = 100) -> None:
    """One answered message of ``identity`` at ``at`` and its reply costing ``tokens``."""
    asked = MessageFactory(
        identity=identity,
        chat=conversation.chat,
        conversation=conversation,
        status=MessageStatus.ANSWERED,
        created_at=at,
    )
    MessageFactory(
        identity=identity,
        chat=conversation.chat,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        reply_to=asked,
        input_tokens=tokens,
        output_tokens=tokens // 2,
        cost_usd=Decimal("0.001") * tokens,
        created_at=at,
    )


@pytest.mark.django_db
def test_a_rebuild_recomputes_days_from_the_messages_and_is_idempotent() -> None:
    identity, conversation = IdentityFactory(), ConversationFactory()
    noon_yesterday = timezone.now() - timedelta(days=1)
    exchange(identity, conversation, noon_yesterday, tokens=100)
    exchange(identity, conversation, noon_yesterday, tokens=40)
    exchange(identity, conversation, timezone.now(), tokens=10)
    DailyUsage.objects.create(  # a wrong figure, as a repair would find it
        day=TODAY, workspace=conversation.workspace, identity=identity, messages=99
    )

    first = usage_rebuild(since=TODAY - timedelta(days=1), until=TODAY)
    second = usage_rebuild(since=TODAY - timedelta(days=1), until=TODAY)

    rows = {row.day: row for row in DailyUsage.objects.filter(identity=identity).order_by("day")}
    assert (first.days, first.rows, second.rows) == (2, 2, 2)
    yesterday = rows[usage_day(noon_yesterday)]
    assert (yesterday.messages, yesterday.input_tokens, yesterday.output_tokens) == (2, 140, 70)
    assert yesterday.cost_usd == Decimal("0.140")
    assert (rows[TODAY].messages, rows[TODAY].input_tokens) == (1, 10)
    assert DailyUsage.objects.count() == 2


@pytest.mark.django_db
def test_a_rebuild_leaves_alone_what_it_has_no_messages_for() -> None:
    conversation = ConversationFactory()
    purged_day = TODAY - timedelta(days=5)
    conversation.workspace.message_retention_days = 3
    conversation.workspace.save()
    someone = IdentityFactory()
    exchange(someone, conversation, timezone.now() - timedelta(days=5), tokens=10)  # half purged
    kept = DailyUsage.objects.create(
        day=purged_day, workspace=conversation.workspace, identity=someone, messages=30
    )
    anonymous = DailyUsage.objects.create(
        day=TODAY, workspace=conversation.workspace, identity=None, messages=4
    )

    rebuilt = usage_rebuild(since=purged_day, until=TODAY)

    assert rebuilt.skipped == 1
    kept.refresh_from_db()
    anonymous.refresh_from_db()
    assert (kept.messages, anonymous.messages) == (30, 4)


def test_a_rebuild_refuses_a_range_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends"):
        usage_rebuild(since=TODAY, until=TODAY - timedelta(days=1))


@pytest.mark.django_db
def test_the_migration_fills_the_table_from_the_history() -> None:
    identity, conversation = IdentityFactory(), ConversationFactory()
    exchange(identity, conversation, timezone.now() - timedelta(days=40), tokens=20)
    exchange(identity, conversation, timezone.now(), tokens=30)
    MessageFactory(identity=identity, conversation=conversation, status=MessageStatus.FAILED)
    migration = importlib.import_module("aisystem.migrations.0012_usage_rollups")

    migration.backfill(apps, SimpleNamespace(connection=connection))

    rows = list(DailyUsage.objects.filter(identity=identity).order_by("day"))
    assert [(r.messages, r.failed, r.input_tokens) for r in rows] == [(1, 0, 20), (1, 1, 30)]
    assert rows[0].day == usage_day(timezone.now() - timedelta(days=40))
