"""What an alert rule may name, and which events it matches.

A rule names public event types (the contract with the outside) or one of the types emitted
for alerts (every key cooling, a key back, a budget at 80 %). Internal pipeline steps
(``gate.allowed``, ``agent.ok``…) are refused: they happen on every message.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import validate_email
from django.db.models.signals import post_delete, post_save

from aisystem.event_catalog import PUBLIC_EVENT_TYPES
from aisystem.models import AlertRule

ALERT_ONLY_EVENT_TYPES = ("credential.all_cooling", "credential.available", "budget.warning")
ALERTABLE_EVENT_TYPES: tuple[str, ...] = (*PUBLIC_EVENT_TYPES, *ALERT_ONLY_EVENT_TYPES)

# A closing event resolves the open alerts of the event it answers, for the same subject.
RESOLVES = {
    "breaker.closed": "breaker.opened",
    "bridge.up": "bridge.down",
    "credential.available": "credential.all_cooling",
}

# The data keys that tell incidents of one type apart: two bridges down are two alerts.
SUBJECT_KEYS: dict[str, tuple[str, ...]] = {
    "breaker.opened": ("service",),
    "breaker.closed": ("service",),
    "bridge.down": ("session",),
    "bridge.up": ("session",),
    "webhook.disabled": ("subscription_id",),
    "budget.warning": ("identity_id", "budget"),
}

_ADDRESS_SPLIT = re.compile(r"[\s,;]+")

Destination = AlertRule.Destination


class AlertConfigError(ValueError):
    """A rule cannot be saved as given; the message says what to change."""


@dataclass(frozen=True)
class RuleSpec:
    """An enabled rule as the dispatcher needs it: read once per batch of events."""

    pk: int
    event_types: frozenset[str]
    match_data: Mapping[str, object]
    dedup_minutes: int

    def matches(self, kind: str, data: Mapping[str, object]) -> bool:
        """True if an event of ``kind`` with ``data`` alerts through this rule."""
        if kind not in self.event_types:
            return False
        return all(data.get(key) == value for key, value in self.match_data.items())


def alert_event_types_check(kinds: Iterable[str]) -> list[str]:
    """The types, deduplicated in order, if a rule may name each; raises ``AlertConfigError``
    naming the others and the valid choices."""
    chosen = list(dict.fromkeys(kind.strip() for kind in kinds if kind.strip()))
    if not chosen:
        raise AlertConfigError("Choose at least one event type.")
    unknown = [kind for kind in chosen if kind not in ALERTABLE_EVENT_TYPES]
    if unknown:
        raise AlertConfigError(
            f"Alerts cannot be sent for {', '.join(unknown)}. Choose from: "
            + ", ".join(ALERTABLE_EVENT_TYPES)
        )
    return chosen


def email_addresses_parse(text: str) -> list[str]:
    """The addresses in ``text`` (separated by commas, semicolons or whitespace); raises
    ``AlertConfigError`` naming the first invalid one."""
    addresses = [part for part in _ADDRESS_SPLIT.split(text.strip()) if part]
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise AlertConfigError(f"{address!r} is not an e-mail address.") from None
    return list(dict.fromkeys(addresses))


def superuser_addresses() -> list[str]:
    """Every active superuser's e-mail address: where alerts go unless staff say otherwise."""
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def alert_recipients(rule: AlertRule) -> list[str]:
    """The addresses an e-mail rule sends to now: its own, else the superusers'."""
    return email_addresses_parse(rule.email_to) or superuser_addresses()


def alert_destination_check(
    *, destination: str, chat_id: int | None, email_to: str, webhook_id: int | None
) -> None:
    """Raises ``AlertConfigError`` unless the destination has the target it needs (and
    only that one)."""
    targets = {
        Destination.TELEGRAM_CHAT: chat_id is not None,
        Destination.EMAIL: bool(email_to.strip()),
        Destination.WEBHOOK: webhook_id is not None,
    }
    if destination == Destination.TELEGRAM_CHAT and chat_id is None:
        raise AlertConfigError("Choose the Telegram chat the alerts go to.")
    if destination == Destination.WEBHOOK and webhook_id is None:
        raise AlertConfigError("Choose the webhook the alerts go to.")
    others = [str(label) for value, label in Destination.choices if value != destination]
    if any(present for kind, present in targets.items() if kind != destination):
        raise AlertConfigError(f"Leave the targets of {' and '.join(others)} empty.")
    if destination == Destination.EMAIL:
        email_addresses_parse(email_to)


def rule_specs(rules: Sequence[tuple[int, object, object, int]]) -> list[RuleSpec]:
    """``(pk, event_types, match_data, dedup_minutes)`` rows as specs; a malformed rule (its
    JSON edited by hand) matches nothing rather than failing every event."""
    specs = []
    for pk, kinds, match_data, minutes in rules:
        if not isinstance(kinds, list):
            continue
        data = match_data if isinstance(match_data, dict) else {}
        specs.append(RuleSpec(pk, frozenset(str(k) for k in kinds), data, minutes))
    return specs


def alert_subject(kind: str, data: Mapping[str, object]) -> str:
    """What the incident is about (the breaker's service, the bridge's session…), or ""."""
    keys = SUBJECT_KEYS.get(kind, ())
    return ":".join(str(data.get(key, "")) for key in keys)[:128]


def alert_rules_enable(*, rule_ids: Sequence[int], enabled: bool = True) -> int:
    """Switch rules on (or off); returns how many changed."""
    changed = (
        AlertRule.objects.filter(pk__in=rule_ids).exclude(enabled=enabled).update(enabled=enabled)
    )
    rule_kinds_forget()  # a bulk update sends no signal
    return changed


# --- The per-process copy of what rules name ----------------------------------------------
#
# Every message's events pass through the dispatcher, and nearly always no rule names them:
# reading the rules each time would add a query (and a savepoint) to every message. So each
# process keeps the set of types enabled rules name, for RULE_KINDS_TTL_SECONDS; a change
# made here clears it at once (model signals), one made in another process is seen within the
# TTL. It only decides whether to look closer: a claim reads the rules afresh.

RULE_KINDS_TTL_SECONDS = 2.0
_rule_kinds: tuple[float, frozenset[str]] | None = None
_rule_kinds_lock = threading.Lock()


def rule_kinds() -> frozenset[str]:
    """The event types some enabled rule names (at most ``RULE_KINDS_TTL_SECONDS`` old)."""
    global _rule_kinds
    now = time.monotonic()
    with _rule_kinds_lock:
        cached = _rule_kinds
    if cached is not None and now - cached[0] < RULE_KINDS_TTL_SECONDS:
        return cached[1]
    kinds = frozenset(
        str(kind)
        for kinds in AlertRule.objects.filter(enabled=True).values_list("event_types", flat=True)
        if isinstance(kinds, list)
        for kind in kinds
    )
    with _rule_kinds_lock:
        _rule_kinds = (now, kinds)
    return kinds


def rule_kinds_forget(*args: Any, **kwargs: Any) -> None:
    """Drop the copy (a signal receiver too). Tests change settings as each starts, and a
    rolled-back database sends no signal, so a setting change drops it as well."""
    global _rule_kinds
    with _rule_kinds_lock:
        _rule_kinds = None


post_save.connect(rule_kinds_forget, sender=AlertRule, dispatch_uid="alert-rule-kinds-save")
post_delete.connect(rule_kinds_forget, sender=AlertRule, dispatch_uid="alert-rule-kinds-delete")
setting_changed.connect(rule_kinds_forget, dispatch_uid="alert-rule-kinds-settings")
