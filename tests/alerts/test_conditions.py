"""Conditions no single event states: the last key going cooling, a key back, a budget at
80 % — each reported once per change."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from aisystem.alerts.conditions import budget_check, credentials_check
from aisystem.env_key import env_key_cache_keys
from aisystem.events import PendingEvent, events_record, system_event_emit
from aisystem.models import Alert, CredentialStatus, Direction, Event, RateLimitPolicy
from aisystem.services.usage import usage_add, usage_day
from tests.alerts.conftest import Emit, queued
from tests.factories import (
    ApiCredentialFactory,
    IdentityFactory,
    MessageFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def kinds(prefix: str) -> list[str]:
    return list(
        Event.objects.filter(kind__startswith=prefix).order_by("id").values_list("kind", flat=True)
    )


def cooling(seconds: float = 30, **fields: Any) -> Any:
    return ApiCredentialFactory(
        status=CredentialStatus.COOLING_DOWN,
        cooldown_until=timezone.now() + timedelta(seconds=seconds),
        **fields,
    )


def test_every_key_cooling_is_reported_once(commit: Callable[..., Any]) -> None:
    cooling(), cooling()
    ApiCredentialFactory(status=CredentialStatus.INVALID)
    now = timezone.now()

    counts = [commit(credentials_check, emit=system_event_emit, now=now) for _ in "ab"]

    assert counts == [1, 0]
    event = Event.objects.get(kind="credential.all_cooling")
    assert event.data["credentials"] == 2 and event.level == "error"


def test_one_key_still_active_means_no_report(commit: Callable[..., Any]) -> None:
    cooling()
    ApiCredentialFactory(status=CredentialStatus.ACTIVE)

    commit(credentials_check, emit=system_event_emit, now=timezone.now())

    assert kinds("credential.") == []


def test_a_key_whose_cooldown_ran_out_is_reported_available(commit: Callable[..., Any]) -> None:
    key = cooling(seconds=30)
    commit(credentials_check, emit=system_event_emit, now=timezone.now())

    later = timezone.now() + timedelta(seconds=31)
    commit(credentials_check, emit=system_event_emit, now=later)
    commit(credentials_check, emit=system_event_emit, now=later)

    assert kinds("credential.") == ["credential.all_cooling", "credential.available"]
    assert Event.objects.get(kind="credential.available").data["credential_id"] == key.pk


def test_the_cooling_event_of_the_last_active_key_alerts_every_key_cooling(
    email_rule: Callable[..., Any], emit: Emit, run_jobs: Callable[[], int]
) -> None:
    """The store records ``credential.cooling`` before it updates the key's row: the check
    counts the key as cooling from the event alone."""
    email_rule("credential.all_cooling")
    cooling()
    last = ApiCredentialFactory(status=CredentialStatus.ACTIVE, label="last")

    emit("credential.cooling", label="last", credential_id=last.pk, seconds=30.0)
    assert queued("aisystem.tasks.alerts_check")
    run_jobs()

    assert kinds("credential.") == ["credential.cooling", "credential.all_cooling"]
    assert len(mail.outbox) == 1 and "Every Anthropic key is cooling down" in mail.outbox[0].subject


def test_without_a_rule_for_it_no_check_is_queued(emit: Emit) -> None:
    last = ApiCredentialFactory(status=CredentialStatus.ACTIVE)

    emit("credential.cooling", label="k", credential_id=last.pk, seconds=30.0)

    assert queued("aisystem.tasks.alerts_check") == []


def spend(identity: Any, tokens: int = 0, cost: Decimal = Decimal(0)) -> Any:
    """A reply to ``identity`` and its usage, rolled up as the outcome's transaction does."""
    usage_add(
        day=usage_day(timezone.now()),
        workspace_id=WorkspaceFactory().pk,
        identity_id=identity.pk,
        input_tokens=tokens,
        cost_usd=cost,
    )
    return MessageFactory(
        identity=identity,
        direction=Direction.OUTBOUND,
        input_tokens=tokens,
        output_tokens=0,
        cost_usd=cost,
    )


def test_a_budget_at_80_percent_warns_once_a_day(ports: Any, commit: Callable[..., Any]) -> None:
    identity = IdentityFactory()
    RateLimitPolicy.objects.create(name="p", identity=identity, daily_token_budget=1000)
    first = spend(identity, 500)
    now = timezone.now()

    below = commit(budget_check, message_id=first.pk, ports=ports, now=now)
    second = spend(identity, 350)
    counts = [commit(budget_check, message_id=second.pk, ports=ports, now=now) for _ in "ab"]

    assert (below, counts) == (0, [1, 0])
    event = Event.objects.get(kind="budget.warning")
    assert event.data == {
        "identity_id": identity.pk,
        "budget": "tokens",
        "used": "850",
        "limit": "1000",
        "percent": 85,
    }


def test_a_cost_budget_counts_too(ports: Any, commit: Callable[..., Any]) -> None:
    identity = IdentityFactory()
    RateLimitPolicy.objects.create(name="p", identity=identity, daily_cost_budget=Decimal("1.00"))
    message = spend(identity, cost=Decimal("0.9"))

    commit(budget_check, message_id=message.pk, ports=ports, now=timezone.now())

    assert Event.objects.get(kind="budget.warning").data["budget"] == "cost"


ANSWERED = {"status": "answered", "reason": "", "delivered": True, "parts": 1, "reply": "",
            "cost_usd": "0"}  # fmt: skip


def test_an_answered_message_near_budget_alerts_staff(
    email_rule: Callable[..., Any], commit: Callable[..., Any], run_jobs: Callable[[], int]
) -> None:
    email_rule("budget.warning", "budget.exceeded")
    identity = IdentityFactory()
    RateLimitPolicy.objects.create(name="p", identity=identity, daily_token_budget=100)
    message = spend(identity, 90)

    answered = PendingEvent(kind="message.answered", summary="answered", data=ANSWERED)
    commit(events_record, [answered], message_id=message.pk)
    run_jobs()

    assert kinds("budget.") == ["budget.warning"]
    assert Alert.objects.get().kind == "budget.warning" and len(mail.outbox) == 1


# --- The environment's key counts too -----------------------------------------------------

ENV_KEY = "sk-ant-from-the-environment"


def mark_env_key_cooling(seconds: float) -> None:
    """What the Claude client does when the environment's key is told to slow down."""
    cool_key, _ = env_key_cache_keys(ENV_KEY)
    cache.set(cool_key, time.time() + seconds, timeout=max(int(seconds) + 1, 1))


def test_stored_keys_cooling_while_the_environments_key_serves_is_no_alert(
    commit: Callable[..., Any], settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ENV_KEY
    cooling(), cooling()

    commit(credentials_check, emit=system_event_emit, now=timezone.now())

    assert kinds("credential.") == []


def test_the_environments_key_cooling_as_the_only_key_is_reported_then_resolved(
    commit: Callable[..., Any], settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ENV_KEY
    mark_env_key_cooling(30)
    commit(credentials_check, emit=system_event_emit, now=timezone.now())

    later = timezone.now() + timedelta(seconds=31)
    commit(credentials_check, emit=system_event_emit, now=later)

    assert kinds("credential.") == ["credential.all_cooling", "credential.available"]
    back = Event.objects.get(kind="credential.available").data
    assert (back["label"], back["credential_id"]) == ("ANTHROPIC_API_KEY", None)


def test_the_cooling_event_of_the_environments_key_alerts_before_its_mark_is_read(
    email_rule: Callable[..., Any], emit: Emit, run_jobs: Callable[[], int], settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ENV_KEY
    email_rule("credential.all_cooling")
    cooling()

    emit("credential.cooling", label="ANTHROPIC_API_KEY", credential_id=None, seconds=30.0)
    run_jobs()

    assert kinds("credential.") == ["credential.cooling", "credential.all_cooling"]
    assert len(mail.outbox) == 1
