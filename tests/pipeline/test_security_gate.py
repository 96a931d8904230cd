"""The security gate, driven with plain values: a message, a clock, rules, counters, budgets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisystem.models import AccessAction, ChatType, Role, Transport
from aisystem.services.access import AccessSubject, RuleSpec
from pipeline.security_gate import (
    NOT_AVAILABLE,
    OUT_OF_BUDGET,
    BudgetCheck,
    RateCheck,
    SecurityGate,
)
from pipeline.types import AccessDecision, InboundMessage

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GATE = SecurityGate(stale_after_seconds=300, max_input_chars=1000)

ALICE = AccessSubject(
    transport=Transport.TELEGRAM,
    identity_id=1,
    username="alice",
    chat_id=10,
    chat_type=ChatType.PRIVATE,
    role=Role.MEMBER,
)


def message(
    *, text: str = "hello", age_seconds: float = 0, is_own: bool = False, is_catch_up: bool = False
) -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id="10",
        chat_type="private",
        message_id="77",
        sender_id="1",
        sent_at=NOW - timedelta(seconds=age_seconds),
        text=text,
        is_own=is_own,
        is_catch_up=is_catch_up,
    )


def allow(rule_id: int, **criteria: object) -> RuleSpec:
    return RuleSpec(id=rule_id, action=AccessAction.ALLOW, **criteria)  # type: ignore[arg-type]


def deny(rule_id: int, **criteria: object) -> RuleSpec:
    return RuleSpec(id=rule_id, action=AccessAction.DENY, **criteria)  # type: ignore[arg-type]


# --- screen: own, stale, oversized ----------------------------------------------------------


def test_a_fresh_message_of_normal_size_goes_on() -> None:
    assert GATE.screen(message(), now=NOW) is None


def test_the_assistants_own_message_is_ignored_without_a_notice() -> None:
    decision = GATE.screen(message(is_own=True), now=NOW)

    assert decision == AccessDecision(allowed=False, reason="own_message")
    assert decision.ignored


def test_own_message_wins_over_being_stale_or_too_long() -> None:
    decision = GATE.screen(message(is_own=True, age_seconds=9999, text="x" * 5000), now=NOW)

    assert decision is not None
    assert decision.reason == "own_message"


def test_a_message_exactly_at_the_staleness_limit_is_still_handled() -> None:
    assert GATE.screen(message(age_seconds=300), now=NOW) is None


def test_a_message_just_past_the_staleness_limit_is_ignored_silently() -> None:
    decision = GATE.screen(message(age_seconds=300.001), now=NOW)

    assert decision == AccessDecision(allowed=False, reason="stale")
    assert decision.ignored
    assert decision.notice == ""


def test_an_old_message_fetched_while_catching_up_is_handled() -> None:
    assert GATE.screen(message(age_seconds=86_400, is_catch_up=True), now=NOW) is None


def test_a_message_exactly_at_the_input_limit_is_handled() -> None:
    assert GATE.screen(message(text="x" * 1000), now=NOW) is None


def test_an_oversized_message_is_rejected_with_a_notice_giving_both_lengths() -> None:
    gate = SecurityGate(stale_after_seconds=300, max_input_chars=4000)

    decision = gate.screen(message(text="x" * 12345), now=NOW)

    assert decision is not None
    assert not decision.allowed
    assert decision.reason == "input_too_long"
    assert not decision.ignored
    assert decision.notice == (
        "That message is too long for me (12,345 characters; the limit is 4,000)."
    )


def test_a_duplicate_is_ignored_silently() -> None:
    decision = SecurityGate.duplicate()

    assert decision == AccessDecision(allowed=False, reason="duplicate")
    assert decision.ignored


# --- validate_access: rules in order, deny by default ---------------------------------------


def test_a_matching_allow_rule_lets_the_sender_in_and_names_the_rule() -> None:
    decision = SecurityGate.validate_access(ALICE, [allow(7, username="Alice")])

    assert decision == AccessDecision(allowed=True, reason="allowed_by_rule", rule_id=7)
    assert decision.notice == ""


def test_with_no_matching_rule_the_sender_is_denied_with_a_notice_that_reveals_nothing() -> None:
    decision = SecurityGate.validate_access(ALICE, [allow(7, username="bob")])

    assert not decision.allowed
    assert decision.reason == "no_matching_rule"
    assert decision.rule_id is None
    assert decision.notice == NOT_AVAILABLE == "Sorry, this assistant isn't available to you."
    assert not decision.ignored


def test_with_no_rules_at_all_everyone_is_denied() -> None:
    decision = SecurityGate.validate_access(ALICE, [])

    assert not decision.allowed
    assert decision.notice == NOT_AVAILABLE


def test_a_deny_rule_earlier_in_the_order_wins_over_a_later_allow() -> None:
    rules = [deny(3, chat_type=ChatType.PRIVATE), allow(4, match_everyone=True)]

    decision = SecurityGate.validate_access(ALICE, rules)

    assert not decision.allowed
    assert decision.reason == "denied_by_rule"
    assert decision.rule_id == 3
    assert decision.notice == NOT_AVAILABLE


def test_an_allow_rule_earlier_in_the_order_wins_over_a_later_deny() -> None:
    rules = [allow(4, identity_id=1), deny(3, match_everyone=True)]

    assert SecurityGate.validate_access(ALICE, rules).allowed


def test_a_silent_deny_rule_sends_no_notice() -> None:
    decision = SecurityGate.validate_access(ALICE, [deny(3, username="alice", silent=True)])

    assert not decision.allowed
    assert decision.reason == "denied_by_rule"
    assert decision.notice == ""


def test_a_blocked_identity_is_denied_silently_even_when_an_allow_rule_matches() -> None:
    blocked = AccessSubject(transport=Transport.TELEGRAM, identity_id=1, is_blocked=True)

    decision = SecurityGate.validate_access(blocked, [allow(1, identity_id=1)])

    assert not decision.allowed
    assert decision.reason == "blocked"
    assert decision.notice == ""
    assert decision.rule_id is None


# --- check_rate: the first exceeded counter decides -----------------------------------------


def test_counters_within_their_limits_let_the_message_through() -> None:
    checks = [RateCheck("identity", True, 0), RateCheck("chat", True, 0)]

    assert SecurityGate.check_rate(checks) is None
    assert SecurityGate.check_rate([]) is None


def test_a_sender_over_their_own_limit_is_told_how_many_seconds_to_wait() -> None:
    decision = SecurityGate.check_rate([RateCheck("identity", False, 42)])

    assert decision is not None
    assert not decision.allowed
    assert decision.reason == "rate_limited"
    assert decision.retry_after_seconds == 42
    assert decision.notice == (
        "You're sending messages faster than I can answer. Please try again in 42 seconds."
    )


def test_a_busy_chat_is_reported_as_a_chat_limit() -> None:
    checks = [RateCheck("identity", True, 0), RateCheck("chat", False, 5)]

    decision = SecurityGate.check_rate(checks)

    assert decision is not None
    assert decision.reason == "chat_rate_limited"
    assert decision.notice.endswith("Please try again in 5 seconds.")


def test_the_first_exceeded_counter_sets_the_reason_and_the_wait() -> None:
    checks = [RateCheck("chat", False, 600), RateCheck("identity", False, 3)]

    decision = SecurityGate.check_rate(checks)

    assert decision is not None
    assert decision.reason == "chat_rate_limited"
    assert decision.retry_after_seconds == 600


@pytest.mark.parametrize(
    ("seconds", "wait"),
    [
        (1, "1 second"),
        (2, "2 seconds"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (120, "2 minutes"),
        (3600, "60 minutes"),
    ],
)
def test_the_wait_is_said_in_seconds_under_a_minute_and_rounded_up_to_minutes_above(
    seconds: int, wait: str
) -> None:
    decision = SecurityGate.check_rate([RateCheck("identity", False, seconds)])

    assert decision is not None
    assert decision.notice.endswith(f"Please try again in {wait}.")


# --- check_budget: today's usage against the daily budgets ----------------------------------


def tokens(used: int, budget: int | None) -> BudgetCheck:
    return BudgetCheck(tokens_used=used, cost_used=Decimal(0), token_budget=budget)


def cost(used: str, budget: str | None) -> BudgetCheck:
    return BudgetCheck(
        tokens_used=0,
        cost_used=Decimal(used),
        cost_budget=None if budget is None else Decimal(budget),
    )


def test_below_the_token_budget_the_message_goes_on() -> None:
    assert SecurityGate.check_budget(tokens(9_999, 10_000)) is None


@pytest.mark.parametrize("used", [10_000, 10_001])
def test_at_or_above_the_token_budget_the_sender_is_told_it_resets_at_midnight(
    used: int,
) -> None:
    decision = SecurityGate.check_budget(tokens(used, 10_000))

    assert decision == AccessDecision(
        allowed=False, reason="token_budget_exceeded", notice=OUT_OF_BUDGET
    )
    assert "midnight" in decision.notice


def test_below_the_cost_budget_the_message_goes_on() -> None:
    assert SecurityGate.check_budget(cost("0.999999", "1.00")) is None


@pytest.mark.parametrize("used", ["1.00", "1.000001", "25"])
def test_at_or_above_the_cost_budget_the_sender_is_turned_away(used: str) -> None:
    decision = SecurityGate.check_budget(cost(used, "1.00"))

    assert decision is not None
    assert decision.reason == "cost_budget_exceeded"
    assert decision.notice == OUT_OF_BUDGET


def test_no_budget_means_unlimited_whatever_was_used() -> None:
    unlimited = BudgetCheck(tokens_used=10**12, cost_used=Decimal("1e9"))

    assert SecurityGate.check_budget(unlimited) is None


def test_the_token_budget_is_checked_before_the_cost_budget() -> None:
    both = BudgetCheck(
        tokens_used=50, cost_used=Decimal(5), token_budget=50, cost_budget=Decimal(5)
    )

    decision = SecurityGate.check_budget(both)

    assert decision is not None
    assert decision.reason == "token_budget_exceeded"


# --- the access decision for any rules and any sender ---------------------------------------

_subjects = st.builds(
    AccessSubject,
    transport=st.sampled_from([Transport.TELEGRAM, Transport.WEB]),
    identity_id=st.sampled_from([None, 1, 2]),
    username=st.sampled_from(["", "alice", "Alice", "bob"]),
    chat_id=st.sampled_from([None, 10, 11]),
    chat_type=st.sampled_from(["", ChatType.PRIVATE, ChatType.GROUP]),
    role=st.sampled_from(["", Role.MEMBER, Role.ADMIN]),
    api_token_id=st.sampled_from([None, 7]),
    is_blocked=st.booleans(),
)

_rules = st.builds(
    RuleSpec,
    id=st.just(0),
    action=st.sampled_from([AccessAction.ALLOW, AccessAction.DENY]),
    silent=st.booleans(),
    match_everyone=st.booleans(),
    identity_id=st.sampled_from([None, 1, 2]),
    username=st.sampled_from(["", "alice", "ALICE", "bob"]),
    chat_id=st.sampled_from([None, 10, 11]),
    chat_type=st.sampled_from(["", ChatType.PRIVATE, ChatType.GROUP]),
    role=st.sampled_from(["", Role.MEMBER, Role.ADMIN]),
    transport=st.sampled_from(["", Transport.TELEGRAM, Transport.WEB]),
    api_token_id=st.sampled_from([None, 7]),
)
_rule_lists = st.lists(_rules, max_size=6).map(
    lambda rules: [replace(rule, id=100 + index) for index, rule in enumerate(rules)]
)


def _applies_to(rule: RuleSpec, subject: AccessSubject) -> bool:
    """The rule's meaning, written independently: every criterion it sets holds for the
    subject (usernames without regard to case); a rule setting none means "everyone" only
    when it says so."""
    criteria = {
        "identity_id": (rule.identity_id, subject.identity_id),
        "username": (rule.username.casefold(), subject.username.casefold()),
        "chat_id": (rule.chat_id, subject.chat_id),
        "chat_type": (rule.chat_type, subject.chat_type),
        "role": (rule.role, subject.role),
        "transport": (rule.transport, subject.transport),
        "api_token_id": (rule.api_token_id, subject.api_token_id),
    }
    set_criteria = [(wanted, actual) for wanted, actual in criteria.values() if wanted]
    if not set_criteria:
        return rule.match_everyone
    return all(wanted == actual for wanted, actual in set_criteria)


@settings(max_examples=500, deadline=None)
@given(subject=_subjects, rules=_rule_lists)
def test_the_sender_is_let_in_only_by_the_first_rule_that_applies_being_an_allow(
    subject: AccessSubject, rules: list[RuleSpec]
) -> None:
    decision = SecurityGate.validate_access(subject, rules)

    applying = [rule for rule in rules if _applies_to(rule, subject)]
    first = applying[0] if applying else None
    let_in = not subject.is_blocked and first is not None and first.action == AccessAction.ALLOW
    assert decision.allowed == let_in
    if decision.allowed:
        assert first is not None
        assert decision.rule_id == first.id
        assert decision.notice == ""
    else:
        assert decision.notice in ("", NOT_AVAILABLE)
        silent = subject.is_blocked or (first is not None and first.silent)
        assert (decision.notice == "") == silent


@settings(max_examples=300, deadline=None)
@given(subject=_subjects, rules=_rule_lists, later=_rule_lists)
def test_rules_after_the_deciding_one_never_change_the_decision(
    subject: AccessSubject, rules: list[RuleSpec], later: list[RuleSpec]
) -> None:
    decision = SecurityGate.validate_access(subject, rules)
    if decision.rule_id is None:
        return  # denied by default or blocked: any added rule may decide instead

    extended = SecurityGate.validate_access(subject, [*rules, *later])

    assert extended == decision
