"""Reads. Return plain values or lists, never lazy querysets that leak into templates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from aisystem.models import (
    AccessRule,
    ApiCredential,
    CredentialStatus,
    DailyUsage,
    Direction,
    ExternalCall,
    Identity,
    Message,
    MessageStatus,
    TelegramSession,
)
from aisystem.services.access import RuleSpec
from aisystem.services.usage import usage_day


def start_of_today(now: datetime | None = None) -> datetime:
    """Midnight in the configured TIME_ZONE, as an aware datetime."""
    local = timezone.localtime(now or timezone.now())
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


@dataclass(frozen=True)
class Usage:
    """Totals from the daily usage rollup (``DailyUsage``): messages answered and failed,
    the tokens and cost of the replies."""

    messages: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class DayUsage:
    day: date
    usage: Usage


@dataclass(frozen=True)
class PersonUsage:
    identity_id: int | None  # None: usage kept only as an anonymous total
    name: str
    usage: Usage


@dataclass(frozen=True)
class SystemOverview:
    messages_today: int
    answered_today: int
    rejections_today: int
    failures_today: int
    tokens_today: int
    cost_today: Decimal
    credentials_by_status: list[tuple[str, str, int]]  # (status, label, count)
    recent_call_failures: list[ExternalCall]
    telegram_sessions: list[TelegramSession]
    usage_by_day: list[DayUsage] = field(default_factory=list)  # the last 7 days, newest first
    top_people_this_month: list[PersonUsage] = field(default_factory=list)  # by cost


def system_overview(*, now: datetime | None = None, failures: int = 8) -> SystemOverview:
    """The admin home's figures. Usage (answered, failed, tokens, cost) comes from the daily
    rollup; only today's received and rejected counts read messages (an indexed range of
    today's rows): the gate refuses a message before anything is rolled up, and counting
    refusals there would add a write to every message before its answer."""
    since = start_of_today(now)
    today = usage_day(now or timezone.now())
    inbound = Message.objects.filter(direction=Direction.INBOUND, created_at__gte=since)
    counts = inbound.aggregate(
        total=Count("pk"), rejected=Count("pk", filter=Q(status=MessageStatus.REJECTED))
    )
    by_day = usage_by_day(since=today - timedelta(days=6), until=today)
    usage = by_day[0].usage if by_day and by_day[0].day == today else Usage()
    by_status = dict(
        ApiCredential.objects.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return SystemOverview(
        messages_today=counts["total"],
        answered_today=usage.messages,
        rejections_today=counts["rejected"],
        failures_today=usage.failed,
        tokens_today=usage.tokens,
        cost_today=usage.cost_usd,
        credentials_by_status=[
            (status, label, by_status.get(status, 0)) for status, label in CredentialStatus.choices
        ],
        recent_call_failures=list(
            ExternalCall.objects.filter(ok=False).order_by("-created_at")[:failures]
        ),
        telegram_sessions=list(TelegramSession.objects.defer("session_string", "api_hash")),
        usage_by_day=by_day,
        top_people_this_month=usage_top_people(since=today.replace(day=1), until=today),
    )


_SUMS = {
    "messages_sum": Sum("messages"),
    "failed_sum": Sum("failed"),
    "input_sum": Sum("input_tokens"),
    "output_sum": Sum("output_tokens"),
    "cost_sum": Sum("cost_usd"),
}


def _totals(row: Mapping[str, Any]) -> Usage:
    return Usage(
        messages=row["messages_sum"] or 0,
        failed=row["failed_sum"] or 0,
        input_tokens=row["input_sum"] or 0,
        output_tokens=row["output_sum"] or 0,
        cost_usd=row["cost_sum"] or Decimal(0),
    )


def usage_by_day(*, since: date, until: date) -> list[DayUsage]:
    """Everyone's usage per day from ``since`` to ``until``, newest first; days without any
    usage are left out."""
    rows = (
        DailyUsage.objects.filter(day__gte=since, day__lte=until)
        .values("day")
        .annotate(**_SUMS)
        .order_by("-day")
    )
    return [DayUsage(day=row["day"], usage=_totals(row)) for row in rows]


def usage_top_people(*, since: date, until: date, limit: int = 5) -> list[PersonUsage]:
    """Who used the most (by cost, then tokens) from ``since`` to ``until``."""
    rows = list(
        DailyUsage.objects.filter(day__gte=since, day__lte=until)
        .values("identity_id")
        .annotate(**_SUMS)
        .order_by("-cost_sum", "-input_sum", "identity_id")[:limit]
    )
    names = {
        identity.pk: str(identity)
        for identity in Identity.objects.filter(pk__in=[r["identity_id"] for r in rows])
    }
    return [
        PersonUsage(
            identity_id=row["identity_id"],
            name=names.get(row["identity_id"], "(forgotten people)"),
            usage=_totals(row),
        )
        for row in rows
    ]


def identity_usage_today(*, identity_id: int, now: datetime | None = None) -> Usage:
    """What this identity used today (the day of ``now`` in ``TIME_ZONE``), from the daily
    rollup: the daily budgets are enforced from this, and the rollup is written in the same
    transaction as each reply, so it is exact."""
    day = usage_day(now or timezone.now())
    row = DailyUsage.objects.filter(identity_id=identity_id, day=day).aggregate(**_SUMS)
    return _totals(row)


@dataclass(frozen=True)
class UsageReport:
    """One person's usage over the periods ``/usage`` shows, and per workspace this month
    (workspace name → totals, most expensive first)."""

    today: Usage
    last_7_days: Usage
    this_month: Usage
    month_by_workspace: list[tuple[str, Usage]]


def identity_usage_report(*, identity_id: int, now: datetime | None = None) -> UsageReport:
    """Today, the last 7 days (today included) and this calendar month, from at most ~31
    rollup rows per workspace."""
    today = usage_day(now or timezone.now())
    week_start, month_start = today - timedelta(days=6), today.replace(day=1)
    rows = list(
        DailyUsage.objects.filter(
            identity_id=identity_id, day__gte=min(week_start, month_start), day__lte=today
        ).values_list(
            "day",
            "workspace__name",
            "messages",
            "failed",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        )
    )

    def total(since: date) -> Usage:
        return _added(Usage(*row[2:]) for row in rows if row[0] >= since)

    workspaces: dict[str, list[Usage]] = {}
    for row in rows:
        if row[0] >= month_start:
            workspaces.setdefault(row[1], []).append(Usage(*row[2:]))
    by_workspace = sorted(
        ((name, _added(parts)) for name, parts in workspaces.items()),
        key=lambda item: (-item[1].cost_usd, -item[1].tokens, item[0]),
    )
    return UsageReport(
        today=total(today),
        last_7_days=total(week_start),
        this_month=total(month_start),
        month_by_workspace=by_workspace,
    )


def _added(parts: Iterable[Usage]) -> Usage:
    result = Usage()
    for part in parts:
        result = Usage(
            messages=result.messages + part.messages,
            failed=result.failed + part.failed,
            input_tokens=result.input_tokens + part.input_tokens,
            output_tokens=result.output_tokens + part.output_tokens,
            cost_usd=result.cost_usd + part.cost_usd,
        )
    return result


def access_rules_enabled() -> list[RuleSpec]:
    """The enabled rules in evaluation order, as plain values for ``access_evaluate``."""
    return [
        RuleSpec.from_rule(rule)
        for rule in AccessRule.objects.filter(enabled=True).order_by("position", "id")
    ]
