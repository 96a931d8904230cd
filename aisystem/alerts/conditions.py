"""Conditions no single event states: every API key cooling down, a budget at 80 % today.

Each is an ``AlertCondition`` row flipped by a conditional update in the same transaction as
the event it emits, so however many jobs check at once, one event is emitted per change:
``credential.all_cooling`` when the last usable key goes cooling, ``credential.available``
when one is usable again (which resolves the first), and ``budget.warning`` once a day per
identity and budget.

Events are emitted through the ports (``aisystem.alerts.ports``) the caller passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aisystem.alerts.ports import AlertPorts, Emit
from aisystem.env_key import ENV_KEY_LABEL, env_key_state
from aisystem.models import (
    AlertCondition,
    ApiCredential,
    CredentialStatus,
    Event,
    Message,
    RateLimitPolicy,
)

ALL_COOLING = "credentials:all_cooling"
BUDGET_WARN_PERCENT = 80
BUDGET_KEEP = timedelta(days=2)
PROVIDER = "anthropic"

logger = logging.getLogger(__name__)


def condition_activate(*, key: str, now: datetime) -> bool:
    """Mark ``key`` active; True only for the one caller that changed it."""
    _, created = AlertCondition.objects.get_or_create(
        key=key, defaults={"active_since": now, "updated_at": now}
    )
    if created:
        return True
    return bool(
        AlertCondition.objects.filter(key=key, active_since=None).update(
            active_since=now, updated_at=now
        )
    )


def condition_clear(*, key: str, now: datetime) -> datetime | None:
    """Mark ``key`` clear; returns since when it was active, for the one caller that changed
    it, else None."""
    since = (
        AlertCondition.objects.filter(key=key)
        .exclude(active_since=None)
        .values_list("active_since", flat=True)
        .first()
    )
    if since is None:
        return None
    won = AlertCondition.objects.filter(key=key, active_since=since).update(
        active_since=None, updated_at=now
    )
    return since if won else None


def conditions_check(
    *, event_ids: Sequence[int], ports: AlertPorts, now: datetime | None = None
) -> int:
    """Check the conditions these events may have changed; returns how many events it emitted.
    Run by a job after the events committed."""
    now = now or timezone.now()
    emitted = 0
    for kind, data, message_id, created_at in Event.objects.filter(pk__in=event_ids).values_list(
        "kind", "data", "message_id", "created_at"
    ):
        if kind == "credential.cooling":
            cooling = _cooling_from(data, created_at)
            emitted += credentials_check(emit=ports.emit, now=now, cooling=cooling)
        elif kind == "message.answered" and message_id is not None:
            emitted += budget_check(message_id=message_id, ports=ports, now=now)
    return emitted


def _cooling_from(data: Mapping[str, object], created_at: datetime) -> dict[int | None, datetime]:
    """The key the event cooled (None: the environment's), until when: its row or cache mark
    may not say so yet (the store records the event before it marks the key)."""
    credential_id, seconds = data.get("credential_id"), data.get("seconds")
    if not isinstance(credential_id, int | None) or not isinstance(seconds, int | float):
        return {}
    return {credential_id: created_at + timedelta(seconds=float(seconds))}


def credentials_check(
    *, emit: Emit, now: datetime, cooling: Mapping[int | None, datetime] | None = None
) -> int:
    """Emit ``credential.all_cooling`` when no key is usable and at least one is cooling
    down, or ``credential.available`` when one is usable again. The keys are the stored
    ones and the environment's (``ANTHROPIC_API_KEY``, whose marks every process keeps in the
    shared cache); with no key at all this does nothing. Returns how many events it emitted
    (0 or 1)."""
    cooling = cooling or {}
    usable: list[tuple[int | None, str]] = []
    back_at: list[datetime | None] = []
    secret = str(settings.ANTHROPIC_API_KEY or "")
    if secret:
        invalid, resting = env_key_state(secret)
        if None in cooling:
            resting = max(resting or cooling[None], cooling[None])
        if not invalid and resting is not None and resting > now:
            back_at.append(resting)
        elif not invalid:
            usable.append((None, ENV_KEY_LABEL))
    rows = ApiCredential.objects.filter(provider=PROVIDER).values_list(
        "pk", "label", "status", "cooldown_until"
    )
    for pk, label, status, until in rows:
        if status not in (CredentialStatus.ACTIVE, CredentialStatus.COOLING_DOWN):
            continue  # invalid and disabled keys have alerts of their own
        resting = until if status == CredentialStatus.COOLING_DOWN else None
        if pk in cooling:
            resting = max(resting or cooling[pk], cooling[pk])
        unknown_end = status == CredentialStatus.COOLING_DOWN and resting is None
        if unknown_end or (resting is not None and resting > now):
            back_at.append(resting)
        else:
            usable.append((pk, label))
    with transaction.atomic():
        if not usable and back_at:
            if not condition_activate(key=ALL_COOLING, now=now):
                return 0
            known = [at for at in back_at if at is not None]
            first = min(known) if known else None
            emit(
                "credential.all_cooling",
                f"Every Anthropic key is cooling down ({len(back_at)}); Claude calls wait"
                + (f" until {first:%H:%M:%S} UTC" if first else ""),
                level=Event.Level.ERROR,
                credentials=len(back_at),
                next_available_at=first.isoformat() if first else None,
            )
            return 1
        if usable and condition_clear(key=ALL_COOLING, now=now) is not None:
            back, label = usable[0]
            emit(
                "credential.available",
                f"Anthropic key {label!r} is usable again",
                level=Event.Level.INFO,
                label=label,
                credential_id=back,
            )
            return 1
    return 0


def budget_check(*, message_id: int, ports: AlertPorts, now: datetime) -> int:
    """Emit ``budget.warning`` the first time today the message's identity has used 80 % of
    a daily budget (its own policy's, else its role's). At 100 % the security gate refuses
    its messages with ``budget.exceeded``. Returns how many events it emitted."""
    found = (
        Message.objects.filter(pk=message_id, identity__isnull=False)
        .values_list("identity_id", "identity__role")
        .first()
    )
    if found is None:
        return 0
    identity_id, role = found
    policy = _policy(identity_id, role)
    if policy is None:
        return 0
    usage = ports.usage_today(identity_id=identity_id, now=now)
    emitted = 0
    for budget, used, limit in (
        ("tokens", Decimal(usage.tokens), policy.daily_token_budget),
        ("cost", usage.cost_usd, policy.daily_cost_budget),
    ):
        if not limit or used * 100 < Decimal(limit) * BUDGET_WARN_PERCENT:
            continue
        key = f"budget:{identity_id}:{budget}:{timezone.localdate(now).isoformat()}"
        with transaction.atomic():
            _, first_today = AlertCondition.objects.get_or_create(
                key=key, defaults={"active_since": now, "updated_at": now}
            )
            if not first_today:
                continue
            percent = int(used * 100 / Decimal(limit))
            ports.emit(
                "budget.warning",
                f"Identity #{identity_id} used {percent} % of its daily {budget} budget",
                level=Event.Level.WARNING,
                identity_id=identity_id,
                budget=budget,
                used=str(used),
                limit=str(limit),
                percent=percent,
            )
            emitted += 1
    return emitted


def _policy(identity_id: int, role: str) -> RateLimitPolicy | None:
    """The identity's own enabled policy, else its role's, if it sets a budget (the gate's
    choice: ``pipeline.admission``)."""
    policies = RateLimitPolicy.objects.filter(enabled=True)
    policy = policies.filter(identity_id=identity_id).first() or (
        policies.filter(role=role, identity=None, chat=None).first() if role else None
    )
    if policy is None or (policy.daily_token_budget is None and policy.daily_cost_budget is None):
        return None
    return policy


def conditions_purge(*, now: datetime) -> int:
    """Forget past days' budget warnings (one row per identity, budget and day)."""
    deleted, _ = AlertCondition.objects.filter(
        key__startswith="budget:", updated_at__lt=now - BUDGET_KEEP
    ).delete()
    return deleted
