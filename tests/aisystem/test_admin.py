"""The admin console: every page opens, staff only, forms explain what is wrong, the dashboard
counts today, API tokens are shown once, and records stay read-only."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Success, Task
from django_q.signing import SignedPackage

from aisystem.models import (
    AccessAction,
    AccessRule,
    Alert,
    AlertRule,
    ApiToken,
    ConnectLink,
    Conversation,
    CredentialStatus,
    Direction,
    Event,
    ExternalCall,
    Identity,
    IntegrationAccount,
    Message,
    MessageStatus,
    OutboxItem,
    PendingAction,
    RateLimitPolicy,
    Role,
    WebhookDelivery,
    WebhookSubscription,
    Workspace,
)
from aisystem.services.tokens import api_token_create
from tests.factories import (
    ApiCredentialFactory,
    ChatFactory,
    ConversationFactory,
    ExternalCallFactory,
    IdentityFactory,
    MessageFactory,
    RateLimitPolicyFactory,
    TelegramSessionFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def admin_url(model: type[Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def a_row_of_everything() -> dict[type[Model], Model]:
    """One row for every registered model, so list and change pages have something to show."""
    conversation = ConversationFactory()
    message = MessageFactory(chat=conversation.chat, conversation=conversation, text="hello")
    token, _ = api_token_create(name="ci")
    user = UserFactory()
    rows: list[Model] = [
        conversation,
        conversation.chat,
        conversation.workspace,
        message,
        message.identity,
        token,
        user,
        AccessRule.objects.get(api_token=token),
        RateLimitPolicyFactory(),
        ApiCredentialFactory(),
        ExternalCallFactory(ok=False, error="boom"),
        TelegramSessionFactory(),
        hook := WebhookSubscription.objects.create(name="hook", url="https://example.test/hook"),
        WebhookDelivery.objects.create(
            subscription=hook,
            event=Event.objects.create(kind="job.failed", summary="failed"),
            webhook_id="msg_admin",
        ),
        rule := AlertRule.objects.create(
            name="ops", event_types=["job.failed"], destination="email"
        ),
        Alert.objects.create(
            rule=rule, kind="job.failed", summary="failed", window_ends_at=timezone.now()
        ),
        IntegrationAccount.objects.create(user=user, provider="github", uid="1"),
        ConnectLink.objects.create(
            nonce="n", provider="github", identity=message.identity, expires_at=timezone.now()
        ),
        PendingAction.objects.create(
            tool="github_create_issue",
            summary="Create issue “Fix login” in acme/web",
            identity=message.identity,
            chat=conversation.chat,
            expires_at=timezone.now(),
        ),
        OutboxItem.objects.create(
            transport="telegram", chat=conversation.chat, idempotency_key="k", text="hi"
        ),
        Group.objects.create(name="operators"),
        Schedule.objects.create(func="math.floor", args="1", name="nightly"),
        *(
            Task.objects.create(
                id=f"{success:d}" * 32,
                name=f"task-{success}",
                func="math.floor",
                started=timezone.now(),
                stopped=timezone.now(),
                success=success,
            )
            for success in (True, False)
        ),
        AccessAttempt.objects.create(
            user_agent="Chromium",
            ip_address="127.0.0.1",
            username="ada",
            http_accept="text/html",
            path_info="/accounts/login/",
            get_data="",
            post_data="username=ada\npassword=********************",
            failures_since_start=2,
        ),
        AccessFailureLog.objects.create(
            user_agent="Chromium",
            ip_address="127.0.0.1",
            username="ada",
            http_accept="text/html",
            path_info="/accounts/login/",
            locked_out=False,
        ),
        AccessLog.objects.create(
            user_agent="Chromium",
            ip_address="127.0.0.1",
            username="ada",
            http_accept="text/html",
            path_info="/accounts/login/",
        ),
        OrmQ.objects.create(
            key="aisystem", payload=SignedPackage.dumps({"id": "t1", "func": "math.floor"})
        ),
    ]
    by_model: dict[type[Model], Model] = {type(row): row for row in rows}
    by_model[Success], by_model[Failure] = Success.objects.get(), Failure.objects.get()
    return by_model


registered = pytest.mark.parametrize(
    "model", list(admin.site._registry), ids=lambda m: m._meta.label
)


@registered
def test_every_changelist_opens_for_a_superuser(
    staff_client: Any, a_row_of_everything: dict[type[Model], Model], model: type[Model]
) -> None:
    response = staff_client.get(admin_url(model, "changelist"))

    assert response.status_code == 200


@registered
def test_every_add_page_opens_where_adding_is_allowed(
    staff_client: Any,
    admin_user: Any,
    rf: Any,
    a_row_of_everything: dict[type[Model], Model],
    model: type[Model],
) -> None:
    request = rf.get("/")
    request.user = admin_user
    allowed = admin.site._registry[model].has_add_permission(request)

    response = staff_client.get(admin_url(model, "add"))

    assert response.status_code == (200 if allowed else 403)


@registered
def test_every_change_page_opens(
    staff_client: Any, a_row_of_everything: dict[type[Model], Model], model: type[Model]
) -> None:
    row = a_row_of_everything[model]

    response = staff_client.get(admin_url(model, "change", row.pk))

    assert response.status_code == 200


def log_in(client: Any, **fields: Any) -> Any:
    """Log in a fresh user. Re-read from the database: UserFactory's set_password is not saved,
    and a session made from the unsaved object would be dropped on the next request."""
    user = get_user_model().objects.get(pk=UserFactory(**fields).pk)
    client.force_login(user)
    return user


def test_a_logged_in_staff_member_reaches_the_admin(client: Any) -> None:
    log_in(client, is_staff=True)

    assert client.get(reverse("admin:index")).status_code == 200


@registered
def test_people_who_are_not_staff_are_sent_to_the_login_page(
    client: Any, model: type[Model]
) -> None:
    log_in(client)

    response = client.get(admin_url(model, "changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_visitors_are_sent_to_the_login_page(client: Any) -> None:
    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- Read-only records ------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Message, ExternalCall], ids=lambda m: m.__name__)
def test_records_can_be_viewed_but_not_saved(staff_client: Any, model: type[Model]) -> None:
    row = MessageFactory(text="original") if model is Message else ExternalCallFactory()

    page = staff_client.get(admin_url(model, "change", row.pk))
    post = staff_client.post(admin_url(model, "change", row.pk), {"text": "tampered"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    assert staff_client.get(admin_url(model, "add")).status_code == 403


def test_a_message_cannot_be_edited_through_a_change_post(staff_client: Any) -> None:
    message = MessageFactory(text="original")

    staff_client.post(admin_url(Message, "change", message.pk), {"text": "tampered"})

    message.refresh_from_db()
    assert message.text == "original"


# --- Validation -------------------------------------------------------------------------------


def rule_form(**overrides: str) -> dict[str, str]:
    data = {
        "action": "allow",
        "enabled": "on",
        "position": "0",
        "description": "",
        "username": "",
        "chat_type": "",
        "role": "",
        "transport": "",
        "identity": "",
        "chat": "",
        "api_token": "",
    }
    return {**data, **overrides}


def test_a_rule_that_matches_nothing_is_rejected_with_an_explanation(staff_client: Any) -> None:
    response = staff_client.post(admin_url(AccessRule, "add"), rule_form())

    assert response.status_code == 200
    assert "A rule must match something" in response.content.decode()
    assert not AccessRule.objects.exists()


def test_a_rule_with_an_unknown_role_is_rejected(staff_client: Any) -> None:
    response = staff_client.post(admin_url(AccessRule, "add"), rule_form(role="wizard"))

    assert response.status_code == 200
    assert (
        "Select a valid choice. wizard is not one of the available choices."
        in response.content.decode()
    )
    assert not AccessRule.objects.exists()


def test_match_everyone_cannot_be_combined_with_a_username(staff_client: Any) -> None:
    response = staff_client.post(
        admin_url(AccessRule, "add"), rule_form(match_everyone="on", username="alice")
    )

    assert response.status_code == 200
    assert "cannot be combined with other criteria" in response.content.decode()
    assert not AccessRule.objects.exists()


def test_a_valid_rule_is_saved_with_the_at_sign_removed(staff_client: Any) -> None:
    response = staff_client.post(admin_url(AccessRule, "add"), rule_form(username=" @Alice "))

    assert response.status_code == 302
    assert AccessRule.objects.get().username == "Alice"


def policy_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Members",
        "role": "",
        "identity": "",
        "chat": "",
        "messages_per_window": "10",
        "window_seconds": "60",
        "daily_token_budget": "",
        "daily_cost_budget": "",
        "enabled": "on",
    }
    return {**data, **overrides}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "Attach the policy to exactly one of: a role, an identity, a chat."),
        ({"role": "member", "chat": "CHAT"}, "Attach the policy to exactly one of"),
        ({"role": "member", "messages_per_window": ""}, "Set at least one limit"),
    ],
    ids=["no target", "two targets", "no limit"],
)
def test_an_incomplete_rate_limit_policy_is_rejected(
    staff_client: Any, overrides: dict[str, str], message: str
) -> None:
    if overrides.get("chat") == "CHAT":
        overrides = {**overrides, "chat": str(ChatFactory().pk)}

    response = staff_client.post(admin_url(RateLimitPolicy, "add"), policy_form(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RateLimitPolicy.objects.exists()


def test_a_second_policy_for_the_same_role_is_rejected(staff_client: Any) -> None:
    RateLimitPolicyFactory(role=Role.MEMBER)

    response = staff_client.post(admin_url(RateLimitPolicy, "add"), policy_form(role="member"))

    assert response.status_code == 200
    assert RateLimitPolicy.objects.count() == 1


def test_a_complete_rate_limit_policy_is_saved(staff_client: Any) -> None:
    response = staff_client.post(
        admin_url(RateLimitPolicy, "add"),
        policy_form(role="guest", messages_per_window="", daily_token_budget="50000"),
    )

    assert response.status_code == 302
    policy = RateLimitPolicy.objects.get()
    assert (policy.role, policy.daily_token_budget) == (Role.GUEST, 50000)


def test_a_second_active_conversation_for_the_same_chat_and_workspace_is_refused(
    staff_client: Any,
) -> None:
    active = ConversationFactory()
    data = {"chat": active.chat.pk, "workspace": active.workspace.pk, "title": "again"}

    response = staff_client.post(admin_url(Conversation, "add"), data)

    assert response.status_code == 200
    assert "already has an active conversation with this workspace" in response.content.decode()
    assert Conversation.objects.count() == 1


def test_a_conversation_can_be_started_once_the_previous_one_ended(staff_client: Any) -> None:
    ended = ConversationFactory(ended_at=timezone.now())
    data = {"chat": ended.chat.pk, "workspace": ended.workspace.pk, "title": "fresh"}

    response = staff_client.post(admin_url(Conversation, "add"), data)

    assert response.status_code == 302
    assert Conversation.objects.get(title="fresh").is_active


def test_ticking_default_on_a_second_workspace_explains_how_to_switch(staff_client: Any) -> None:
    WorkspaceFactory(name="General", is_default=True)
    data = {
        "slug": "research", "name": "Research", "model": "claude", "max_tokens": "1024",
        "history_max_messages": "20", "history_max_tokens": "8000", "is_default": "on",
        "is_active": "on", "created_at_0": "2025-01-01", "created_at_1": "10:00:00",
    }  # fmt: skip

    response = staff_client.post(admin_url(Workspace, "add"), data)

    assert response.status_code == 200
    assert "“General” is the default workspace." in response.content.decode()
    assert not Workspace.objects.filter(slug="research").exists()


def test_staff_can_queue_several_messages_by_hand(staff_client: Any) -> None:
    chat = ChatFactory()
    data = {
        "transport": "telegram", "chat": chat.pk, "text": "Maintenance at 22:00",
        "reply_to_transport_message_id": "", "status": "pending",
        "available_at_0": "2025-01-01", "available_at_1": "10:00:00",
    }  # fmt: skip

    first = staff_client.post(admin_url(OutboxItem, "add"), data)
    second = staff_client.post(admin_url(OutboxItem, "add"), data)

    assert (first.status_code, second.status_code) == (302, 302)
    keys = set(OutboxItem.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 2
    assert "" not in keys


# --- Dashboard --------------------------------------------------------------------------------


def element_text(html: str, element_id: str) -> str:
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"#{element_id} is missing from the page"
    return match.group(2)


def test_the_dashboard_counts_todays_inbound_messages_and_rejections(staff_client: Any) -> None:
    MessageFactory.create_batch(3, status=MessageStatus.ANSWERED)
    MessageFactory.create_batch(2, status=MessageStatus.REJECTED)
    MessageFactory(direction=Direction.OUTBOUND)
    MessageFactory(status=MessageStatus.REJECTED, created_at=timezone.now() - timedelta(days=2))

    html = staff_client.get(reverse("admin:index")).content.decode()

    assert element_text(html, "messages-today").strip() == "5"
    assert element_text(html, "rejections-today").strip() == "2"


def test_the_dashboard_counts_credentials_by_status(staff_client: Any) -> None:
    ApiCredentialFactory.create_batch(2)
    ApiCredentialFactory(status=CredentialStatus.COOLING_DOWN)
    ApiCredentialFactory(status=CredentialStatus.DISABLED)

    html = staff_client.get(reverse("admin:index")).content.decode()

    table = element_text(html, "credentials-by-status")
    counts = dict(re.findall(r'<th scope="row">([^<]+)</th><td>(\d+)</td>', table))
    assert counts == {"Active": "2", "Cooling down": "1", "Invalid": "0", "Disabled": "1"}


def test_the_dashboard_lists_the_latest_external_call_failures(staff_client: Any) -> None:
    ExternalCallFactory(ok=False, status_code=529, error="overloaded_error: try later")
    ExternalCallFactory(ok=True, error="")
    ExternalCallFactory(
        ok=False, error="ancient failure", created_at=timezone.now() - timedelta(days=1)
    )

    html = staff_client.get(reverse("admin:index")).content.decode()

    failures = element_text(html, "recent-failures")
    assert "overloaded_error: try later" in failures
    assert "529" in failures
    assert failures.index("overloaded_error") < failures.index("ancient failure")
    assert failures.count("<tr>") == 2


def test_the_dashboard_says_so_when_nothing_failed(staff_client: Any) -> None:
    html = staff_client.get(reverse("admin:index")).content.decode()

    assert "No failures recorded." in element_text(html, "recent-failures")
    assert element_text(html, "messages-today").strip() == "0"


def test_staff_without_permission_to_view_the_records_do_not_see_the_dashboard(
    client: Any,
) -> None:
    ExternalCallFactory(ok=False, error="overloaded_error: try later")
    MessageFactory()
    log_in(client, is_staff=True)

    html = client.get(reverse("admin:index")).content.decode()

    assert 'id="system-overview"' not in html
    assert "overloaded_error" not in html


def test_staff_allowed_to_view_the_records_see_the_dashboard(client: Any) -> None:
    user = log_in(client, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="aisystem",
            codename__in=[
                "view_message",
                "view_apicredential",
                "view_externalcall",
                "view_telegramsession",
            ],
        )
    )
    MessageFactory()

    html = client.get(reverse("admin:index")).content.decode()

    assert element_text(html, "messages-today").strip() == "1"


def test_the_app_index_opens_without_the_dashboard(staff_client: Any) -> None:
    response = staff_client.get(reverse("admin:app_list", args=["aisystem"]))

    assert response.status_code == 200
    assert 'id="system-overview"' not in response.content.decode()


def test_the_dashboard_still_lists_the_apps(staff_client: Any) -> None:
    html = staff_client.get(reverse("admin:index")).content.decode()

    assert "Access rules" in html
    assert admin_url(AccessRule, "changelist") in html


def test_the_dashboard_shows_the_telegram_bridge_without_its_secrets(staff_client: Any) -> None:
    TelegramSessionFactory(account_username="helper_bot", session_string="BQ-DASH-SECRET")

    html = staff_client.get(reverse("admin:index")).content.decode()

    assert "@helper_bot" in html
    assert "BQ-DASH-SECRET" not in html


# --- API tokens -------------------------------------------------------------------------------


def add_token(client: Any, name: str = "ci-bot") -> tuple[Any, str]:
    response = client.post(
        admin_url(ApiToken, "add"), {"name": name, "expires_at_0": "", "expires_at_1": ""}
    )
    match = re.search(r'value="(ais_[^"]+)"', response.content.decode())
    assert match, "the created page does not show the token"
    return response, match.group(1)


def test_a_new_api_token_is_shown_exactly_once_on_the_created_page(staff_client: Any) -> None:
    response, plaintext = add_token(staff_client)

    assert response.status_code == 200
    assert response.content.decode().count(plaintext) == 1
    assert "no-store" in response["Cache-Control"]
    assert len(plaintext) > 40


def test_only_the_sha256_of_a_new_api_token_is_stored(staff_client: Any) -> None:
    _, plaintext = add_token(staff_client)

    token = ApiToken.objects.get(name="ci-bot")
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.startswith(token.prefix)
    assert not ApiToken.objects.filter(token_hash=plaintext).exists()


def test_a_new_api_token_is_allowed_by_an_access_rule(staff_client: Any, admin_user: Any) -> None:
    add_token(staff_client)

    token = ApiToken.objects.get(name="ci-bot")
    assert token.created_by == admin_user
    assert AccessRule.objects.filter(api_token=token, action=AccessAction.ALLOW).count() == 1


def test_an_api_token_expiry_typed_in_the_add_form_is_kept(staff_client: Any) -> None:
    staff_client.post(
        admin_url(ApiToken, "add"),
        {"name": "temp", "expires_at_0": "2031-01-02", "expires_at_1": "03:04:05"},
    )

    token = ApiToken.objects.get(name="temp")
    assert token.expires_at is not None
    assert token.expires_at.year == 2031


def test_the_api_token_change_page_never_shows_the_token(staff_client: Any) -> None:
    _, plaintext = add_token(staff_client)
    token = ApiToken.objects.get(name="ci-bot")

    html = staff_client.get(admin_url(ApiToken, "change", token.pk)).content.decode()

    assert token.prefix in html
    assert plaintext not in html
    assert token.token_hash not in html


def test_a_duplicate_api_token_name_is_rejected_without_creating_a_token(
    staff_client: Any,
) -> None:
    api_token_create(name="ci-bot")

    response = staff_client.post(
        admin_url(ApiToken, "add"), {"name": "ci-bot", "expires_at_0": "", "expires_at_1": ""}
    )

    assert response.status_code == 200
    assert "ais_" not in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_the_api_token_history_never_shows_the_token(staff_client: Any) -> None:
    _, plaintext = add_token(staff_client)
    token = ApiToken.objects.get(name="ci-bot")

    html = staff_client.get(admin_url(ApiToken, "history", token.pk)).content.decode()

    assert "Added." in html
    assert plaintext not in html


def test_identity_is_listed_with_its_role(staff_client: Any) -> None:
    IdentityFactory(username="grace", role=Role.TRUSTED)

    html = staff_client.get(admin_url(Identity, "changelist")).content

    assert b"@grace" in html
    assert b"Trusted" in html
