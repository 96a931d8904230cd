"""Admin actions and list editing: what staff click, and what changes in the database."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from aisystem.models import (
    AccessAction,
    AccessRule,
    ApiToken,
    Conversation,
    CredentialStatus,
    OutboxItem,
    RateCounter,
    Role,
    Workspace,
)
from aisystem.services.rate_limits import (
    chat_counter_key,
    identity_counter_key,
    rate_limit_hit,
)
from aisystem.services.tokens import api_token_create
from tests.factories import (
    AccessRuleFactory,
    ApiCredentialFactory,
    ChatFactory,
    ConversationFactory,
    IdentityFactory,
    RateLimitPolicyFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def run_action(client: Any, model: type[Model], action: str, *objects: Model) -> str:
    """POST an action to the model's changelist; returns the page it redirects to."""
    url = reverse(f"admin:aisystem_{model._meta.model_name}_changelist")
    response = client.post(
        url,
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
        follow=True,
    )
    assert response.status_code == 200
    assert response.redirect_chain, "the action did not redirect back to the list"
    return str(response.content.decode())


def count_hits(key: str, times: int) -> None:
    for _ in range(times):
        rate_limit_hit(key=key, limit=100, window_seconds=60)


def rule_order() -> list[str]:
    return list(AccessRule.objects.order_by("position", "id").values_list("description", flat=True))


def rule_positions() -> list[int]:
    return list(AccessRule.objects.order_by("position", "id").values_list("position", flat=True))


# --- Identities -------------------------------------------------------------------------------


def test_blocking_identities_marks_them_blocked(staff_client: Any) -> None:
    alice, bob = IdentityFactory(), IdentityFactory()

    html = run_action(staff_client, type(alice), "block", alice)

    alice.refresh_from_db()
    bob.refresh_from_db()
    assert alice.is_blocked
    assert "Blocked by admin" in alice.blocked_reason
    assert not bob.is_blocked
    assert "Blocked 1 identities." in html


def test_allowing_an_identity_unblocks_it_and_puts_an_allow_rule_at_the_top(
    staff_client: Any,
) -> None:
    AccessRuleFactory(description="first", position=0)
    AccessRuleFactory(description="second", position=1, action=AccessAction.DENY)
    alice = IdentityFactory(is_blocked=True, blocked_reason="spam")

    html = run_action(staff_client, type(alice), "allow", alice)

    alice.refresh_from_db()
    assert not alice.is_blocked
    assert alice.blocked_reason == ""
    top = AccessRule.objects.order_by("position").first()
    assert top is not None
    assert (top.identity, top.action, top.position) == (alice, AccessAction.ALLOW, 0)
    assert dict(AccessRule.objects.exclude(pk=top.pk).values_list("description", "position")) == {
        "first": 1,
        "second": 2,
    }
    assert "Allowed 1 identities." in html


def test_allowing_an_identity_twice_adds_only_one_rule(staff_client: Any) -> None:
    alice = IdentityFactory()

    run_action(staff_client, type(alice), "allow", alice)
    run_action(staff_client, type(alice), "allow", alice)

    assert AccessRule.objects.filter(identity=alice).count() == 1


def test_allowing_an_identity_puts_its_allow_rule_above_a_deny_rule_for_it(
    staff_client: Any,
) -> None:
    alice = IdentityFactory()
    AccessRuleFactory(description="deny alice", action=AccessAction.DENY, identity=alice,
                      match_everyone=False, position=0)  # fmt: skip
    AccessRuleFactory(description="allow alice", identity=alice, match_everyone=False, position=1)

    run_action(staff_client, type(alice), "allow", alice)

    first = AccessRule.objects.order_by("position", "id").first()
    assert first is not None
    assert first.action == AccessAction.ALLOW


def test_resetting_rate_limits_forgets_only_the_selected_identities_counts(
    staff_client: Any,
) -> None:
    alice, bob = IdentityFactory(), IdentityFactory()
    count_hits(identity_counter_key(alice.pk), 3)
    count_hits(identity_counter_key(bob.pk), 2)

    html = run_action(staff_client, type(alice), "reset_rate_limits", alice)

    assert not RateCounter.objects.filter(key=identity_counter_key(alice.pk)).exists()
    assert RateCounter.objects.get(key=identity_counter_key(bob.pk)).count == 2
    assert "Reset rate limits of 1 identities (1 counters)." in html


# --- Rate-limit policies ----------------------------------------------------------------------


def test_resetting_a_role_policy_clears_the_counters_of_everyone_with_that_role(
    staff_client: Any,
) -> None:
    member, trusted = IdentityFactory(role=Role.MEMBER), IdentityFactory(role=Role.TRUSTED)
    policy = RateLimitPolicyFactory(role=Role.MEMBER)
    count_hits(identity_counter_key(member.pk), 4)
    count_hits(identity_counter_key(trusted.pk), 1)

    html = run_action(staff_client, type(policy), "reset_counters", policy)

    assert not RateCounter.objects.filter(key=identity_counter_key(member.pk)).exists()
    assert RateCounter.objects.filter(key=identity_counter_key(trusted.pk)).exists()
    assert "1 counters cleared" in html


def test_resetting_a_chat_policy_clears_the_chats_counter(staff_client: Any) -> None:
    chat = ChatFactory()
    policy = RateLimitPolicyFactory(role="", chat=chat)
    count_hits(chat_counter_key(chat.pk), 2)

    run_action(staff_client, type(policy), "reset_counters", policy)

    assert not RateCounter.objects.exists()


# --- Credentials ------------------------------------------------------------------------------


def test_disabling_a_credential_takes_it_out_of_rotation(staff_client: Any) -> None:
    key, other = ApiCredentialFactory(), ApiCredentialFactory()

    html = run_action(staff_client, type(key), "disable", key)

    key.refresh_from_db()
    other.refresh_from_db()
    assert key.status == CredentialStatus.DISABLED
    assert other.status == CredentialStatus.ACTIVE
    assert "Disabled 1 keys." in html


def test_enabling_a_credential_clears_its_cooldown_and_failures(staff_client: Any) -> None:
    key = ApiCredentialFactory(
        status=CredentialStatus.COOLING_DOWN,
        cooldown_until=timezone.now() + timedelta(minutes=5),
        failure_count=3,
        last_error="529 overloaded",
    )

    run_action(staff_client, type(key), "enable", key)

    key.refresh_from_db()
    assert key.status == CredentialStatus.ACTIVE
    assert key.cooldown_until is None
    assert key.failure_count == 0
    assert key.last_error == ""


# --- Conversations and chats ------------------------------------------------------------------


def test_ending_conversations_ends_only_the_active_ones(staff_client: Any) -> None:
    earlier = timezone.now() - timedelta(days=1)
    active = ConversationFactory()
    ended = ConversationFactory(ended_at=earlier, ended_reason="new")

    html = run_action(staff_client, Conversation, "end", active, ended)

    active.refresh_from_db()
    ended.refresh_from_db()
    assert active.ended_at is not None
    assert active.ended_reason == "staff"
    assert (ended.ended_at, ended.ended_reason) == (earlier, "new")
    assert "Ended 1 conversations." in html


def test_ending_a_chats_conversations_leaves_other_chats_alone(staff_client: Any) -> None:
    chat = ChatFactory()
    first = ConversationFactory(chat=chat)
    second = ConversationFactory(chat=chat)
    elsewhere = ConversationFactory()

    html = run_action(staff_client, type(chat), "end_conversations", chat)

    assert Conversation.objects.filter(pk__in=[first.pk, second.pk], ended_at=None).count() == 0
    elsewhere.refresh_from_db()
    assert elsewhere.is_active
    assert "Ended 2 conversations." in html


# --- Access rules -----------------------------------------------------------------------------


@pytest.fixture
def four_rules() -> dict[str, AccessRule]:
    return {name: AccessRuleFactory(description=name, position=i) for i, name in enumerate("abcd")}


@pytest.mark.parametrize(
    ("action", "selected", "expected"),
    [
        ("move_to_top", "c", "cabd"),
        ("move_to_top", "bd", "bdac"),
        ("move_up", "c", "acbd"),
        ("move_up", "a", "abcd"),
        ("move_up", "bc", "bcad"),
        ("move_down", "b", "acbd"),
        ("move_down", "d", "abcd"),
        ("move_to_bottom", "a", "bcda"),
        ("move_to_bottom", "ac", "bdac"),
    ],
)
def test_moving_rules_reorders_them_and_renumbers_from_zero(
    staff_client: Any,
    four_rules: dict[str, AccessRule],
    action: str,
    selected: str,
    expected: str,
) -> None:
    run_action(staff_client, AccessRule, action, *(four_rules[name] for name in selected))

    assert "".join(rule_order()) == expected
    assert rule_positions() == [0, 1, 2, 3]


def test_disabling_rules_from_the_list(
    staff_client: Any, four_rules: dict[str, AccessRule]
) -> None:
    html = run_action(staff_client, AccessRule, "disable", four_rules["a"], four_rules["b"])

    assert set(AccessRule.objects.filter(enabled=False).values_list("description", flat=True)) == {
        "a",
        "b",
    }
    assert "Disabled 2 rules." in html


def changelist_formset(html: str) -> dict[str, str]:
    """The management form and per-row id/position/enabled values, as the browser would send."""
    data: dict[str, str] = {}
    for match in re.finditer(r"<input[^>]*>", html):
        tag = match.group(0)
        name = re.search(r'name="(form-[^"]+)"', tag)
        if not name:
            continue
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                data[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = value.group(1) if value else ""
    return data


def test_rules_can_be_reordered_by_editing_positions_in_the_list(
    staff_client: Any, four_rules: dict[str, AccessRule]
) -> None:
    url = reverse("admin:aisystem_accessrule_changelist")
    data = changelist_formset(staff_client.get(url).content.decode())
    assert data["form-TOTAL_FORMS"] == "4"
    by_id = {str(rule.pk): name for name, rule in four_rules.items()}
    new_positions = {"a": "30", "b": "10", "c": "20", "d": "0"}
    for index in range(4):
        data[f"form-{index}-position"] = new_positions[by_id[data[f"form-{index}-id"]]]

    response = staff_client.post(url, {**data, "_save": "Save"}, follow=True)

    assert response.status_code == 200
    assert "".join(rule_order()) == "dbca"
    assert "4 access rules were changed successfully." in response.content.decode()


# --- Workspaces, tokens, outbox ---------------------------------------------------------------


def test_making_a_workspace_the_default_moves_the_flag(staff_client: Any) -> None:
    old = WorkspaceFactory(is_default=True)
    new = WorkspaceFactory(name="Research")

    html = run_action(staff_client, Workspace, "make_default", new)

    assert list(Workspace.objects.filter(is_default=True)) == [new]
    old.refresh_from_db()
    assert not old.is_default
    assert "“Research” is now the default workspace." in html


def test_making_two_workspaces_the_default_is_refused(staff_client: Any) -> None:
    old = WorkspaceFactory(is_default=True)
    first, second = WorkspaceFactory(), WorkspaceFactory()

    html = run_action(staff_client, Workspace, "make_default", first, second)

    assert list(Workspace.objects.filter(is_default=True)) == [old]
    assert "Select exactly one workspace." in html


def test_revoking_a_token_makes_it_unusable(staff_client: Any) -> None:
    token, _ = api_token_create(name="ci")
    other, _ = api_token_create(name="laptop")

    html = run_action(staff_client, ApiToken, "revoke", token)

    token.refresh_from_db()
    other.refresh_from_db()
    assert token.revoked_at is not None
    assert not token.is_usable
    assert other.is_usable
    assert "Revoked 1 tokens." in html


def test_retrying_deliveries_requeues_failed_ones_but_not_sent_ones(staff_client: Any) -> None:
    chat = ChatFactory()
    later = timezone.now() + timedelta(hours=1)
    failed = OutboxItem.objects.create(
        transport=chat.transport,
        chat=chat,
        idempotency_key="a",
        text="hi",
        status=OutboxItem.Status.FAILED,
        available_at=later,
        attempts=5,
    )
    sent = OutboxItem.objects.create(
        transport=chat.transport,
        chat=chat,
        idempotency_key="b",
        text="hello",
        status=OutboxItem.Status.SENT,
        available_at=later,
    )

    html = run_action(staff_client, OutboxItem, "retry_now", failed, sent)

    failed.refresh_from_db()
    sent.refresh_from_db()
    assert failed.status == OutboxItem.Status.PENDING
    assert failed.available_at <= timezone.now()
    assert sent.status == OutboxItem.Status.SENT
    assert "1 deliveries queued again." in html
