"""Reads. Return plain values or lists, never lazy querysets that leak into templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from aisystem.models import (
    AccessRule,
    ApiCredential,
    CredentialStatus,
    Direction,
    ExternalCall,
    Message,
    MessageStatus,
    TelegramSession,
)
from aisystem.services.access import RuleSpec


def start_of_today(now: datetime | None = None) -> datetime:
    """Midnight in the configured TIME_ZONE, as an aware datetime."""
    local = timezone.localtime(now or timezone.now())
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


@dataclass(frozen=True)
class Usage:
    tokens: int
    cost_usd: Decimal


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


def system_overview(*, now: datetime | None = None, failures: int = 8) -> SystemOverview:
    since = start_of_today(now)
    inbound = Message.objects.filter(direction=Direction.INBOUND, created_at__gte=since)
    counts = inbound.aggregate(
        total=Count("pk"),
        answered=Count("pk", filter=Q(status=MessageStatus.ANSWERED)),
        rejected=Count("pk", filter=Q(status=MessageStatus.REJECTED)),
        failed=Count("pk", filter=Q(status=MessageStatus.FAILED)),
    )
    usage = _usage(Message.objects.filter(direction=Direction.OUTBOUND, created_at__gte=since))
    by_status = dict(
        ApiCredential.objects.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return SystemOverview(
        messages_today=counts["total"],
        answered_today=counts["answered"],
        rejections_today=counts["rejected"],
        failures_today=counts["failed"],
        tokens_today=usage.tokens,
        cost_today=usage.cost_usd,
        credentials_by_status=[
            (status, label, by_status.get(status, 0)) for status, label in CredentialStatus.choices
        ],
        recent_call_failures=list(
            ExternalCall.objects.filter(ok=False).order_by("-created_at")[:failures]
        ),
        telegram_sessions=list(TelegramSession.objects.defer("session_string", "api_hash")),
    )


def _usage(messages: object) -> Usage:
    totals = messages.aggregate(  # type: ignore[attr-defined]
        input=Sum("input_tokens"), output=Sum("output_tokens"), cost=Sum("cost_usd")
    )
    return Usage(
        tokens=(totals["input"] or 0) + (totals["output"] or 0),
        cost_usd=totals["cost"] or Decimal(0),
    )


def identity_usage_today(*, identity_id: int, now: datetime | None = None) -> Usage:
    """Tokens and cost of the replies this identity received today (budget accounting)."""
    return _usage(
        Message.objects.filter(
            identity_id=identity_id,
            direction=Direction.OUTBOUND,
            created_at__gte=start_of_today(now),
        )
    )


def access_rules_enabled() -> list[RuleSpec]:
    """The enabled rules in evaluation order, as plain values for ``access_evaluate``."""
    return [
        RuleSpec.from_rule(rule)
        for rule in AccessRule.objects.filter(enabled=True).order_by("position", "id")
    ]
