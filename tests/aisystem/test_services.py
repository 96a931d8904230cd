from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from aisystem.api.selectors import api_message_for_token
from aisystem.models import (
    AccessAction,
    AccessRule,
    ApiToken,
    Conversation,
    CredentialStatus,
    Direction,
    Message,
    MessageStatus,
    OutboxItem,
    RateCounter,
    RateLimitPolicy,
    Role,
    Transport,
    Workspace,
)
from aisystem.selectors import access_rules_enabled, identity_usage_today, system_overview
from aisystem.services.access import (
    access_rule_create,
    access_rules_disable,
    access_rules_enable,
    access_rules_move,
)
from aisystem.services.accounts import superuser_ensure
from aisystem.services.conversations import conversations_end, workspace_make_default
from aisystem.services.credentials import credentials_disable, credentials_enable
from aisystem.services.delivery import outbox_items_retry
from aisystem.services.identities import identity_allow, identity_block
from aisystem.services.rate_limits import (
    identity_counter_key,
    rate_counters_purge,
    rate_limit_hit,
    rate_limit_reset,
)
from aisystem.services.tokens import api_token_authenticate, api_token_create, api_tokens_revoke
from aisystem.services.usage import usage_add, usage_day
from tests.factories import (
    AccessRuleFactory,
    ApiCredentialFactory,
    ChatFactory,
    ConversationFactory,
    ExternalCallFactory,
    IdentityFactory,
    MessageFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def positions() -> list[tuple[str, int]]:
    return list(AccessRule.objects.order_by("position").values_list("description", "position"))


def test_rules_move_to_the_top_and_bottom_keeping_their_relative_order() -> None:
    _a, _b, c, d = (AccessRuleFactory(description=name) for name in "abcd")
    access_rules_move(rules=[c, d], to="top")
    assert positions() == [("c", 0), ("d", 1), ("a", 2), ("b", 3)]
    access_rules_move(rules=AccessRule.objects.filter(description="c"), to="bottom")
    assert [name for name, _ in positions()] == ["d", "a", "b", "c"]


def test_rules_move_up_and_down_one_place() -> None:
    a, _b, c = (AccessRuleFactory(description=name) for name in "abc")
    access_rules_move(rules=[c], to="up")
    assert [name for name, _ in positions()] == ["a", "c", "b"]
    access_rules_move(rules=[a], to="down")
    assert [name for name, _ in positions()] == ["c", "a", "b"]
    access_rules_move(rules=[c], to="up")  # already first: stays
    assert [name for name, _ in positions()] == ["c", "a", "b"]


def test_a_rule_created_at_the_top_pushes_the_others_down() -> None:
    AccessRuleFactory(description="old", position=0)
    access_rule_create(action=AccessAction.DENY, at="top", role=Role.GUEST, description="new")
    assert positions() == [("new", 0), ("old", 1)]


def test_a_rule_that_matches_nothing_is_refused_by_validation_and_by_the_database() -> None:
    with pytest.raises(ValidationError, match="must match something"):
        access_rule_create(action=AccessAction.ALLOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessRule.objects.create(action=AccessAction.ALLOW)


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValidationError, match="role"):
        access_rule_create(action=AccessAction.ALLOW, role="wizard")


def test_enabled_rules_are_read_in_order_as_plain_values() -> None:
    AccessRuleFactory(description="second", position=5)
    AccessRuleFactory(description="off", position=1, enabled=False)
    first = AccessRuleFactory(
        description="first", position=2, role=Role.ADMIN, match_everyone=False
    )
    specs = access_rules_enabled()
    assert specs[0].id == first.pk
    assert len(specs) == 2
    assert specs[0].role == Role.ADMIN


def enabled_rules() -> list[str]:
    """Descriptions of the rules access decisions use, in evaluation order."""
    descriptions = dict(AccessRule.objects.values_list("pk", "description"))
    return [descriptions[spec.id] for spec in access_rules_enabled()]


def test_disabled_rules_leave_the_decisions_and_return_in_place_when_enabled() -> None:
    for name in "abc":
        AccessRuleFactory(description=name)

    assert access_rules_disable(rules=AccessRule.objects.filter(description__in="ab")) == 2
    assert enabled_rules() == ["c"]
    assert access_rules_enable(rules=AccessRule.objects.filter(description="a")) == 1
    assert enabled_rules() == ["a", "c"]


def test_blocking_then_allowing_an_identity_adds_a_top_allow_rule_once() -> None:
    AccessRuleFactory(description="existing")
    identity = IdentityFactory()
    identity_block(identity=identity, reason="spam")
    identity.refresh_from_db()
    assert identity.is_blocked and identity.blocked_reason == "spam"
    identity_allow(identity=identity)
    identity_allow(identity=identity)
    identity.refresh_from_db()
    assert not identity.is_blocked
    rules = list(AccessRule.objects.order_by("position"))
    assert rules[0].identity == identity and rules[0].action == AccessAction.ALLOW
    assert AccessRule.objects.filter(identity=identity).count() == 1


def test_a_rate_limit_allows_up_to_the_limit_per_window_then_denies() -> None:
    now = timezone.now().replace(second=5, microsecond=0)
    results = [
        rate_limit_hit(key="identity:1:messages", limit=3, window_seconds=60, now=now)
        for _ in range(5)
    ]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    later = now + timedelta(seconds=60)
    assert rate_limit_hit(key="identity:1:messages", limit=3, window_seconds=60, now=later).allowed


def test_resetting_an_identity_forgets_its_count_but_not_others() -> None:
    alice, bob = IdentityFactory(), IdentityFactory()
    for identity in (alice, bob):
        for _ in range(2):
            rate_limit_hit(key=identity_counter_key(identity.pk), limit=2, window_seconds=60)
    rate_limit_reset(identities=[alice])
    assert rate_limit_hit(key=identity_counter_key(alice.pk), limit=2, window_seconds=60).allowed
    assert not rate_limit_hit(key=identity_counter_key(bob.pk), limit=2, window_seconds=60).allowed


def test_expired_windows_are_purged() -> None:
    past = timezone.now() - timedelta(hours=1)
    rate_limit_hit(key="k", limit=1, window_seconds=60, now=past)
    rate_limit_hit(key="k", limit=1, window_seconds=60)
    assert rate_counters_purge() == 1
    assert RateCounter.objects.count() == 1


def test_a_policy_must_target_exactly_one_thing_and_set_a_limit() -> None:
    identity = IdentityFactory()
    with pytest.raises(ValidationError, match="exactly one"):
        RateLimitPolicy(
            name="x", role=Role.GUEST, identity=identity, messages_per_window=1
        ).full_clean()
    with pytest.raises(ValidationError, match="at least one limit"):
        RateLimitPolicy(name="x", role=Role.GUEST).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        RateLimitPolicy.objects.create(name="x", messages_per_window=1)


def test_disabling_and_enabling_credentials() -> None:
    key = ApiCredentialFactory(
        failure_count=3, status=CredentialStatus.COOLING_DOWN, cooldown_until=timezone.now()
    )
    credentials_disable(credentials=type(key).objects.filter(pk=key.pk))
    key.refresh_from_db()
    assert key.status == CredentialStatus.DISABLED
    credentials_enable(credentials=type(key).objects.filter(pk=key.pk))
    key.refresh_from_db()
    assert (key.status, key.failure_count, key.cooldown_until) == (CredentialStatus.ACTIVE, 0, None)


def test_ending_conversations_touches_only_active_ones() -> None:
    active = ConversationFactory()
    ended_at = timezone.now() - timedelta(days=1)
    ended = ConversationFactory(ended_at=ended_at, ended_reason="user")
    assert conversations_end(conversations=Conversation.objects.all(), reason="staff") == 1
    active.refresh_from_db()
    ended.refresh_from_db()
    assert active.ended_reason == "staff" and active.ended_at is not None
    assert ended.ended_reason == "user" and ended.ended_at == ended_at


def test_a_chat_has_one_active_conversation_per_workspace() -> None:
    conversation = ConversationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(chat=conversation.chat, workspace=conversation.workspace)
    other = WorkspaceFactory()
    Conversation.objects.create(chat=conversation.chat, workspace=other)


def test_only_one_workspace_can_be_the_default() -> None:
    WorkspaceFactory(is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkspaceFactory(is_default=True)


def test_making_a_workspace_the_default_leaves_exactly_one_default() -> None:
    old = WorkspaceFactory(is_default=True)
    first, second = WorkspaceFactory(), WorkspaceFactory()

    workspace_make_default(workspace=first)
    assert list(Workspace.objects.filter(is_default=True)) == [first]
    assert first.is_default

    workspace_make_default(workspace=second)
    workspace_make_default(workspace=second)  # already the default: stays so
    assert list(Workspace.objects.filter(is_default=True)) == [second]
    old.refresh_from_db()
    first.refresh_from_db()
    assert not old.is_default and not first.is_default


def test_making_a_workspace_the_default_works_when_there_is_none() -> None:
    workspace = WorkspaceFactory()

    workspace_make_default(workspace=workspace)

    assert list(Workspace.objects.filter(is_default=True)) == [workspace]


def outbox_item(status: str, **fields: object) -> OutboxItem:
    chat = ChatFactory()
    return OutboxItem.objects.create(
        transport=chat.transport,
        chat=chat,
        idempotency_key=f"key-{status}",
        text="hi",
        status=status,
        **fields,
    )


def test_retrying_requeues_failed_and_waiting_deliveries_now_with_no_attempts() -> None:
    later = timezone.now() + timedelta(hours=1)
    failed = outbox_item(OutboxItem.Status.FAILED, attempts=5, available_at=later)
    waiting = outbox_item(OutboxItem.Status.PENDING, attempts=2, available_at=later)
    sending = outbox_item(OutboxItem.Status.SENDING, attempts=1, available_at=later)
    sent = outbox_item(OutboxItem.Status.SENT, attempts=1, available_at=later)

    assert outbox_items_retry(items=OutboxItem.objects.all()) == 2

    for item in (failed, waiting, sending, sent):
        item.refresh_from_db()
    for item in (failed, waiting):
        assert (item.status, item.attempts) == (OutboxItem.Status.PENDING, 0)
        assert item.available_at <= timezone.now()
    # one going out right now could be delivered twice; a sent one is done
    assert (sending.status, sending.attempts, sending.available_at) == ("sending", 1, later)
    assert (sent.status, sent.attempts, sent.available_at) == ("sent", 1, later)


def test_retrying_touches_only_the_selected_deliveries() -> None:
    chosen = outbox_item(OutboxItem.Status.FAILED, attempts=3)
    other = outbox_item(OutboxItem.Status.PENDING, attempts=3)

    assert outbox_items_retry(items=OutboxItem.objects.filter(pk=chosen.pk)) == 1

    other.refresh_from_db()
    assert other.attempts == 3


def test_a_stored_api_message_is_read_with_its_latest_reply_by_its_token_only() -> None:
    token, _ = api_token_create(name="ci")
    other, _ = api_token_create(name="other")
    chat = ChatFactory(transport=Transport.API, external_id=f"{token.pk}:c")
    sent = MessageFactory(
        transport=Transport.API, chat=chat, text="remember me", status=MessageStatus.ANSWERED
    )
    for text in ("first try", "final answer"):
        MessageFactory(
            transport=Transport.API,
            chat=chat,
            direction=Direction.OUTBOUND,
            reply_to=sent,
            text=text,
        )
    reply = Message.objects.get(text="final answer")

    found = api_message_for_token(token_id=token.pk, message_id=sent.pk)

    assert found is not None
    assert (found.message_id, found.text, found.status) == (sent.pk, "remember me", "answered")
    assert (found.reply, found.created_at) == ("final answer", sent.created_at)
    assert api_message_for_token(token_id=other.pk, message_id=sent.pk) is None
    assert api_message_for_token(token_id=token.pk, message_id=reply.pk) is None  # a reply


def test_a_stored_api_message_without_a_reply_yet_has_none() -> None:
    token, _ = api_token_create(name="ci")
    chat = ChatFactory(transport=Transport.API, external_id=f"{token.pk}:c")
    sent = MessageFactory(transport=Transport.API, chat=chat)
    telegram = MessageFactory()

    found = api_message_for_token(token_id=token.pk, message_id=sent.pk)

    assert found is not None and found.reply is None
    assert api_message_for_token(token_id=token.pk, message_id=telegram.pk) is None


def test_the_same_transport_message_is_stored_once_per_direction() -> None:
    message = MessageFactory(transport_message_id="42")
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(chat=message.chat, transport_message_id="42")
    MessageFactory(chat=message.chat, transport_message_id="42", direction=Direction.OUTBOUND)
    MessageFactory(chat=ChatFactory(), transport_message_id="42")


def test_api_tokens_are_stored_hashed_and_authenticate_until_revoked() -> None:
    token, plaintext = api_token_create(name="ci")
    assert plaintext.startswith("ais_") and len(plaintext) > 40
    stored = ApiToken.objects.get()
    assert stored.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in {stored.prefix, stored.token_hash, stored.name}
    assert AccessRule.objects.get(api_token=token).action == AccessAction.ALLOW
    assert api_token_authenticate(plaintext) == token
    assert api_token_authenticate(plaintext + "x") is None
    assert api_token_authenticate("") is None
    api_tokens_revoke(tokens=[token])
    assert api_token_authenticate(plaintext) is None


def test_expired_api_tokens_do_not_authenticate() -> None:
    token, plaintext = api_token_create(name="old")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_token_authenticate(plaintext) is None


def test_superuser_is_created_from_the_environment_or_with_a_generated_password() -> None:
    from django.contrib.auth import get_user_model

    outcome = superuser_ensure(username=None, email=None, password=None)
    assert outcome.created and outcome.username == "admin" and outcome.generated_password
    user = get_user_model().objects.get(username="admin")
    assert user.check_password(outcome.generated_password) and user.is_superuser
    again = superuser_ensure(username=None, email=None, password=None)
    assert not again.created and again.generated_password is None
    assert again.chat_rule is None  # an existing superuser's rules are staff's to keep

    named = superuser_ensure(username="ops", email="ops@example.test", password="s3cret-Pass!")
    assert named.created and named.generated_password is None
    assert get_user_model().objects.get(username="ops").check_password("s3cret-Pass!")
    unchanged = superuser_ensure(username="ops", email=None, password="other")
    assert not unchanged.created
    assert get_user_model().objects.get(username="ops").check_password("s3cret-Pass!")


def test_a_new_superuser_may_use_the_browser_chat_and_nobody_else() -> None:
    outcome = superuser_ensure(username="ops", email=None, password="s3cret-Pass!")
    rule = outcome.chat_rule
    assert rule is not None
    assert AccessRule.objects.get() == rule
    assert (rule.action, rule.transport, rule.username) == ("allow", "web", "ops")
    assert [(r.action, r.username) for r in access_rules_enabled()] == [("allow", "ops")]


def test_the_overview_counts_todays_messages_rejections_and_usage() -> None:
    identity = IdentityFactory()
    MessageFactory(identity=identity, status=MessageStatus.ANSWERED)
    MessageFactory(identity=identity, status=MessageStatus.REJECTED)
    MessageFactory(
        identity=identity,
        status=MessageStatus.REJECTED,
        created_at=timezone.now() - timedelta(days=2),
    )
    MessageFactory(
        identity=identity,
        direction=Direction.OUTBOUND,
        input_tokens=100,
        output_tokens=50,
        cost_usd=Decimal("0.0123"),
    )
    usage_add(  # the reply's usage, as the outcome's transaction rolls it up
        day=usage_day(timezone.now()),
        workspace_id=WorkspaceFactory().pk,
        identity_id=identity.pk,
        input_tokens=100,
        output_tokens=50,
        cost_usd=Decimal("0.0123"),
    )
    ApiCredentialFactory(status=CredentialStatus.INVALID)
    ApiCredentialFactory()
    ExternalCallFactory(ok=False, status_code=529, error="overloaded")
    ExternalCallFactory(ok=True)

    overview = system_overview()
    assert (overview.messages_today, overview.rejections_today) == (2, 1)
    assert (overview.tokens_today, overview.cost_today) == (150, Decimal("0.0123"))
    by_status = {status: count for status, _, count in overview.credentials_by_status}
    assert by_status == {"active": 1, "cooling_down": 0, "invalid": 1, "disabled": 0}
    assert [call.error for call in overview.recent_call_failures] == ["overloaded"]
    usage = identity_usage_today(identity_id=identity.pk)
    assert (usage.tokens, usage.cost_usd) == (150, Decimal("0.0123"))
    assert Message.objects.count() == 4
