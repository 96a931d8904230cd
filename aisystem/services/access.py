"""Access decisions: the one place that says who may talk to the assistant.

``access_evaluate`` is pure: the security gate passes it a snapshot of the enabled rules and
a description of the sender, so it is tested with plain values, one condition per line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from django.db import transaction
from django.db.models import F, Max, QuerySet

from aisystem.models import AccessAction, AccessRule


@dataclass(frozen=True)
class AccessSubject:
    """Who sent a message, where: the facts rules match on."""

    transport: str
    identity_id: int | None = None
    username: str = ""
    chat_id: int | None = None
    chat_type: str = ""
    role: str = ""
    api_token_id: int | None = None
    is_blocked: bool = False


@dataclass(frozen=True)
class RuleSpec:
    """An enabled AccessRule, detached from the ORM (its fields are the model's attnames)."""

    id: int
    action: str
    silent: bool = False
    match_everyone: bool = False
    identity_id: int | None = None
    username: str = ""
    chat_id: int | None = None
    chat_type: str = ""
    role: str = ""
    transport: str = ""
    api_token_id: int | None = None

    @property
    def has_criterion(self) -> bool:
        return any(
            getattr(self, attname) not in (None, "") for attname in AccessRule.match_attnames()
        )

    @classmethod
    def from_rule(cls, rule: AccessRule) -> RuleSpec:
        return cls(
            id=rule.pk,
            action=rule.action,
            silent=rule.silent,
            match_everyone=rule.match_everyone,
            identity_id=rule.identity_id,
            username=rule.username,
            chat_id=rule.chat_id,
            chat_type=rule.chat_type,
            role=rule.role,
            transport=rule.transport,
            api_token_id=rule.api_token_id,
        )


@dataclass(frozen=True)
class AccessVerdict:
    """``allowed`` is the answer; ``reason`` is for audit and never shown to the sender."""

    allowed: bool
    reason: Literal["blocked", "allowed_by_rule", "denied_by_rule", "no_matching_rule"]
    rule_id: int | None = None
    silent: bool = False


def access_rule_matches(rule: RuleSpec, subject: AccessSubject) -> bool:
    """True if every criterion the rule sets holds for the subject (criteria are ANDed)."""
    if rule.identity_id is not None and rule.identity_id != subject.identity_id:
        return False
    if rule.username and rule.username.casefold() != subject.username.casefold():
        return False
    if rule.chat_id is not None and rule.chat_id != subject.chat_id:
        return False
    if rule.chat_type and rule.chat_type != subject.chat_type:
        return False
    if rule.role and rule.role != subject.role:
        return False
    if rule.transport and rule.transport != subject.transport:
        return False
    if rule.api_token_id is not None and rule.api_token_id != subject.api_token_id:
        return False
    # A rule with no criterion matches only when it says "everyone" explicitly.
    return rule.has_criterion or rule.match_everyone


def access_evaluate(rules: Sequence[RuleSpec], subject: AccessSubject) -> AccessVerdict:
    """Blocked identities are denied silently; otherwise the first matching rule decides;
    no matching rule is a deny (deny by default). ``rules`` must be in position order."""
    if subject.is_blocked:
        return AccessVerdict(allowed=False, reason="blocked", silent=True)
    for rule in rules:
        if not access_rule_matches(rule, subject):
            continue
        if rule.action == AccessAction.ALLOW:
            return AccessVerdict(allowed=True, reason="allowed_by_rule", rule_id=rule.id)
        return AccessVerdict(
            allowed=False, reason="denied_by_rule", rule_id=rule.id, silent=rule.silent
        )
    return AccessVerdict(allowed=False, reason="no_matching_rule")


@transaction.atomic
def access_rule_create(
    *, action: str, at: Literal["top", "bottom"] = "bottom", **criteria: object
) -> AccessRule:
    """Create a validated rule at the top or bottom of the order."""
    rule = AccessRule(action=action, **criteria)
    if at == "top":
        AccessRule.objects.update(position=F("position") + 1)
        rule.position = 0
    else:
        rule.position = _next_position()
    rule.full_clean()
    rule.save()
    return rule


def access_rules_enable(*, rules: QuerySet[AccessRule]) -> int:
    """Let ``rules`` take part in access decisions again; returns how many were updated."""
    return rules.update(enabled=True)


def access_rules_disable(*, rules: QuerySet[AccessRule]) -> int:
    """Leave ``rules`` out of access decisions, keeping their place; returns how many."""
    return rules.update(enabled=False)


def _next_position() -> int:
    highest = AccessRule.objects.aggregate(highest=Max("position"))["highest"]
    return 0 if highest is None else highest + 1


@transaction.atomic
def access_rules_move(
    *, rules: Iterable[AccessRule], to: Literal["top", "bottom", "up", "down"]
) -> None:
    """Move rules, keeping their relative order, then renumber everything 0, 1, 2…"""
    moving_ids = {rule.pk for rule in rules}
    ordered = list(AccessRule.objects.select_for_update().order_by("position", "id"))
    moving = [rule for rule in ordered if rule.pk in moving_ids]
    staying = [rule for rule in ordered if rule.pk not in moving_ids]
    if to == "top":
        ordered = moving + staying
    elif to == "bottom":
        ordered = staying + moving
    else:
        ordered = _shift_one(ordered, moving_ids, up=(to == "up"))
    changed = []
    for position, rule in enumerate(ordered):
        if rule.position != position:
            rule.position = position
            changed.append(rule)
    AccessRule.objects.bulk_update(changed, ["position"])


def _shift_one(ordered: list[AccessRule], moving_ids: set[int], *, up: bool) -> list[AccessRule]:
    items = list(ordered) if up else list(reversed(ordered))
    for index in range(1, len(items)):
        if items[index].pk in moving_ids and items[index - 1].pk not in moving_ids:
            items[index - 1], items[index] = items[index], items[index - 1]
    return items if up else list(reversed(items))
