"""``/usage``, the daily budgets and the admin's figures, all read from the rollup: none of
them reads the messages table for tokens or cost."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aisystem.models import (
    DailyUsage,
    Direction,
    Identity,
    Message,
    RateLimitPolicy,
    Role,
    Workspace,
)
from aisystem.selectors import identity_usage_today, system_overview
from aisystem.services.usage import usage_add, usage_day
from pipeline.command_executor import command_execute
from pipeline.data_commands import usage_reply
from pipeline.processor import UnifiedMessageProcessor
from pipeline.security_gate import OUT_OF_BUDGET
from tests.factories import IdentityFactory, MessageFactory, WorkspaceFactory
from tests.pipeline.builders import context
from tests.usage.conftest import FileRecordingTransport, message

TODAY = usage_day(timezone.now())


def spend(identity: Identity, workspace: Workspace, days_ago: int = 0, **values: Any) -> None:
    usage_add(
        day=TODAY - timedelta(days=days_ago),
        workspace_id=workspace.pk,
        identity_id=identity.pk,
        **values,
    )


def message_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if '"aisystem_message"' in q["sql"]]


# --- /usage ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_usage_shows_what_today_s_answers_used(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    transport = FileRecordingTransport()
    answered = [
        await processor.process_message(message(text), transport) for text in ("hi", "and you?")
    ]

    result = await processor.process_message(message("/usage"), transport)

    tokens = sum(r.input_tokens + r.output_tokens for r in answered)
    cost = sum(r.cost_usd for r in answered)
    assert result.status == "answered"
    today = next(line for line in result.reply.splitlines() if line.startswith("- Today:"))
    assert f"2 messages answered, {tokens:,} tokens" in today
    assert f"about ${cost:.4f}" in today
    assert "Your usage (days run midnight to midnight, UTC):" in result.reply


@pytest.mark.django_db
def test_usage_adds_up_the_last_7_days_and_the_month_per_workspace() -> None:
    ada = IdentityFactory()
    default, code = WorkspaceFactory(name="Default"), WorkspaceFactory(name="Code")
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)

    def on(day: int, workspace: Workspace, month: int = 3, **values: Any) -> None:
        usage_add(day=date(2026, month, day), workspace_id=workspace.pk, identity_id=ada.pk,
                  **values)  # fmt: skip

    on(20, default, messages=2, input_tokens=100, output_tokens=50, cost_usd=Decimal("0.01"))
    on(17, code, messages=1, input_tokens=1000, cost_usd=Decimal("0.5"), failed=1)
    on(2, default, messages=4, input_tokens=4)  # this month, not this week
    on(28, default, month=2, messages=9, input_tokens=9)  # last month

    with CaptureQueriesContext(connection) as queries:
        reply = usage_reply(identity_id=ada.pk, now=now)

    assert reply.splitlines()[1:] == [
        "- Today: 2 messages answered, 150 tokens (100 in, 50 out), about $0.0100",
        "- Last 7 days: 3 messages answered (1 failed), 1,150 tokens, about $0.5100",
        "- This month (March): 7 messages answered (1 failed), 1,154 tokens, about $0.5100",
        "By workspace this month:",
        "- Code: 1 message answered (1 failed), 1,000 tokens, about $0.5000",
        "- Default: 6 messages answered, 154 tokens, about $0.0100",
    ]
    assert message_queries(queries) == []


@pytest.mark.django_db
def test_usage_says_how_much_of_each_daily_budget_is_used() -> None:
    ada = IdentityFactory(role=Role.MEMBER)
    RateLimitPolicy.objects.create(
        name="members",
        role=Role.MEMBER,
        daily_token_budget=1000,
        daily_cost_budget=Decimal("2.00"),
        messages_per_window=20,
        window_seconds=60,
    )
    spend(ada, WorkspaceFactory(), messages=1, input_tokens=200, output_tokens=50,
          cost_usd=Decimal("0.5"))  # fmt: skip

    reply = command_execute(name="usage", args="", context=context(identity_id=ada.pk)).reply

    assert "Daily token budget: 250 of 1,000 used (25 %); it resets at midnight." in reply
    assert "Daily cost budget: $0.5000 of $2.00 used (25 %)." in reply
    assert "Rate limit: 20 messages per 60 s." in reply


@pytest.mark.django_db
def test_usage_of_someone_new_says_nothing_yet() -> None:
    reply = command_execute(
        name="usage", args="", context=context(identity_id=IdentityFactory().pk)
    ).reply

    assert "- Today: nothing yet" in reply.splitlines()
    assert "budget" not in reply


# --- The budgets ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_today_s_usage_for_the_budgets_is_one_rollup_read() -> None:
    ada, workspace = IdentityFactory(), WorkspaceFactory()
    spend(ada, workspace, input_tokens=70, output_tokens=30, cost_usd=Decimal("0.2"))
    spend(ada, WorkspaceFactory(), input_tokens=5, cost_usd=Decimal("0.1"))
    spend(ada, workspace, days_ago=1, input_tokens=1000)  # yesterday's does not count

    with CaptureQueriesContext(connection) as queries:
        usage = identity_usage_today(identity_id=ada.pk)

    assert (usage.tokens, usage.cost_usd) == (105, Decimal("0.3"))
    assert len(queries.captured_queries) == 1
    assert message_queries(queries) == []


@pytest.mark.django_db(transaction=True)
async def test_the_token_budget_holds_across_answers_counted_in_the_rollup(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    ada = await Identity.objects.acreate(transport="telegram", external_id="7", role=Role.MEMBER)
    await RateLimitPolicy.objects.acreate(name="ada", identity=ada, daily_token_budget=10)
    transport = FileRecordingTransport()

    first = await processor.process_message(message("a question using tokens"), transport)
    second = await processor.process_message(message("another"), transport)

    assert first.status == "answered"
    assert (second.status, second.reason) == ("rejected", "token_budget_exceeded")
    assert transport.texts[-1] == OUT_OF_BUDGET


# --- The admin's figures --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_overview_reads_usage_from_the_rollup_and_counts_only_arrivals_in_messages() -> None:
    ada, bob, workspace = IdentityFactory(), IdentityFactory(), WorkspaceFactory()
    spend(ada, workspace, messages=3, failed=1, input_tokens=100, output_tokens=50,
          cost_usd=Decimal("0.0123"))  # fmt: skip
    spend(bob, workspace, messages=1, input_tokens=10, cost_usd=Decimal("0.5"))
    spend(ada, workspace, days_ago=2, messages=5, input_tokens=1)
    MessageFactory(identity=ada, direction=Direction.OUTBOUND, input_tokens=10**6)  # not read

    with CaptureQueriesContext(connection) as queries:
        overview = system_overview()

    assert (overview.answered_today, overview.failures_today) == (4, 1)
    assert (overview.tokens_today, overview.cost_today) == (160, Decimal("0.5123"))
    assert [(d.day, d.usage.messages) for d in overview.usage_by_day][:1] == [(TODAY, 4)]
    assert overview.top_people_this_month[0].identity_id == bob.pk
    reads = message_queries(queries)
    assert len(reads) == 1 and "SUM" not in reads[0].upper()


@pytest.mark.django_db
def test_the_dashboard_shows_the_last_7_days_and_who_used_most(staff_client: Any) -> None:
    ada, workspace = IdentityFactory(username="ada"), WorkspaceFactory()
    spend(ada, workspace, messages=2, input_tokens=1200, output_tokens=34,
          cost_usd=Decimal("1.25"))  # fmt: skip
    Message.objects.all().delete()

    html = staff_client.get(reverse("admin:index")).content.decode()

    table = re.search(r'id="usage-by-day">(.*?)</table>', html, re.S)
    people = re.search(r'id="usage-top-people">(.*?)</table>', html, re.S)
    assert table and people
    assert f"{TODAY:%Y-%m-%d}" in table.group(1) and "$1.2500" in table.group(1)
    assert "@ada" in people.group(1) and "1234 tokens" in people.group(1)
    assert re.search(r'id="tokens-today">1234<', html)


@pytest.mark.django_db
def test_usage_kept_only_as_an_anonymous_total_still_counts_for_staff() -> None:
    workspace = WorkspaceFactory()
    DailyUsage.objects.create(day=TODAY, workspace=workspace, identity=None, messages=2,
                              cost_usd=Decimal("0.4"))  # fmt: skip

    overview = system_overview()

    assert (overview.answered_today, overview.cost_today) == (2, Decimal("0.4"))
    assert [p.name for p in overview.top_people_this_month] == ["(forgotten people)"]
