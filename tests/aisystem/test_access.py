"""access_evaluate: the one security decision, tested with plain values."""

from __future__ import annotations

import pytest

from aisystem.models import AccessAction, ChatType, Role, Transport
from aisystem.services.access import AccessSubject, RuleSpec, access_evaluate

ALICE = AccessSubject(
    transport=Transport.TELEGRAM,
    identity_id=1,
    username="Alice",
    chat_id=10,
    chat_type=ChatType.PRIVATE,
    role=Role.MEMBER,
)


def allow(rule_id: int = 1, **criteria: object) -> RuleSpec:
    return RuleSpec(id=rule_id, action=AccessAction.ALLOW, **criteria)  # type: ignore[arg-type]


def deny(rule_id: int = 2, **criteria: object) -> RuleSpec:
    return RuleSpec(id=rule_id, action=AccessAction.DENY, **criteria)  # type: ignore[arg-type]


def test_with_no_rules_everyone_is_denied() -> None:
    verdict = access_evaluate([], ALICE)
    assert not verdict.allowed
    assert verdict.reason == "no_matching_rule"


def test_a_rule_without_criteria_matches_nobody_unless_it_says_everyone() -> None:
    assert not access_evaluate([allow()], ALICE).allowed
    assert access_evaluate([allow(match_everyone=True)], ALICE).allowed


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"identity_id": 1}, True),
        ({"identity_id": 2}, False),
        ({"username": "alice"}, True),
        ({"username": "bob"}, False),
        ({"chat_id": 10}, True),
        ({"chat_id": 11}, False),
        ({"chat_type": ChatType.PRIVATE}, True),
        ({"chat_type": ChatType.GROUP}, False),
        ({"role": Role.MEMBER}, True),
        ({"role": Role.ADMIN}, False),
        ({"transport": Transport.TELEGRAM}, True),
        ({"transport": Transport.API}, False),
        ({"api_token_id": 5}, False),
        ({"role": Role.MEMBER, "chat_type": ChatType.GROUP}, False),
        ({"role": Role.MEMBER, "chat_type": ChatType.PRIVATE}, True),
    ],
)
def test_every_criterion_a_rule_sets_must_hold(criteria: dict[str, object], expected: bool) -> None:
    assert access_evaluate([allow(**criteria)], ALICE).allowed is expected


def test_usernames_match_case_insensitively() -> None:
    assert access_evaluate([allow(username="ALICE")], ALICE).allowed


def test_the_first_matching_rule_decides() -> None:
    rules = [deny(rule_id=7, username="alice"), allow(rule_id=8, match_everyone=True)]
    verdict = access_evaluate(rules, ALICE)
    assert (verdict.allowed, verdict.reason, verdict.rule_id) == (False, "denied_by_rule", 7)
    verdict = access_evaluate(list(reversed(rules)), ALICE)
    assert (verdict.allowed, verdict.rule_id) == (True, 8)


def test_a_silent_deny_rule_says_so() -> None:
    assert access_evaluate([deny(match_everyone=True, silent=True)], ALICE).silent


def test_a_blocked_identity_is_denied_silently_even_with_an_allow_rule() -> None:
    blocked = AccessSubject(**{**ALICE.__dict__, "is_blocked": True})
    verdict = access_evaluate([allow(identity_id=1)], blocked)
    assert (verdict.allowed, verdict.reason, verdict.silent) == (False, "blocked", True)


def test_an_api_token_rule_covers_every_end_user_of_that_token() -> None:
    rules = [allow(api_token_id=5)]
    for user in range(3):
        subject = AccessSubject(transport=Transport.API, identity_id=100 + user, api_token_id=5)
        assert access_evaluate(rules, subject).allowed
    other = AccessSubject(transport=Transport.API, identity_id=100, api_token_id=6)
    assert not access_evaluate(rules, other).allowed
