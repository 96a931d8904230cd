"""/connect, /connections, /disconnect, /confirm and /cancel, as the command executor runs
them: real database, real integration services, the loopback fake GitHub for revocation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from aisystem.models import (
    Chat,
    ChatType,
    ConnectLink,
    Identity,
    IntegrationAccount,
    IntegrationStatus,
    PendingAction,
)
from pipeline.command_executor import PRIVATE_LINK_ONLY, command_execute
from pipeline.commands import help_text
from pipeline.tools.github import CREATE_ISSUE
from pipeline.tools.pending import pending_action_propose
from pipeline.types import MessageContext
from tests.factories import ChatFactory, IdentityFactory, UserFactory
from tests.fakes.github import FakeGitHub
from tests.pipeline.builders import context

pytestmark = pytest.mark.django_db


@pytest.fixture
def github(settings: Any) -> Iterator[FakeGitHub]:
    """The fake GitHub as this installation's GitHub; Google is not configured."""
    with FakeGitHub() as fake:
        settings.INTEGRATIONS = {
            "github": {
                "CLIENT_ID": fake.client_id,
                "CLIENT_SECRET": fake.client_secret,
                "URL": fake.base_url,
                "API_URL": fake.api_url,
            },
            "google": {**settings.INTEGRATIONS["google"], "CLIENT_ID": "", "CLIENT_SECRET": ""},
        }
        fake.add_user("ann")
        yield fake


@pytest.fixture
def google_too(settings: Any, github: FakeGitHub) -> None:
    settings.INTEGRATIONS = {
        **settings.INTEGRATIONS,
        "google": {**settings.INTEGRATIONS["google"], "CLIENT_ID": "g-id", "CLIENT_SECRET": "g-s"},
    }


def connect_account(fake: FakeGitHub, identity: Identity, login: str = "ann") -> str:
    """Connect ``login``'s GitHub account to ``identity``; returns the access token."""
    user = UserFactory(username=f"user-{identity.pk}")
    Identity.objects.filter(pk=identity.pk).update(user=user)
    token = fake.issue_tokens(login, scope="repo,read:user").access_token
    IntegrationAccount.objects.create(
        user=user,
        provider="github",
        uid=login,
        extra_data={"access_token": token},
        login=f"@{login}",
        scopes="repo read:user",
    )
    return token


def run(command: str, identity: Identity, chat: Chat) -> str:
    name, _, args = command.lstrip("/").partition(" ")
    return command_execute(name=name, args=args.strip(), context=ctx(identity, chat)).reply


def ctx(identity: Identity, chat: Chat) -> MessageContext:
    return context(identity_id=identity.pk, chat_pk=chat.pk, chat_type=chat.chat_type)


# --- /connect -------------------------------------------------------------------------------


def test_connect_says_when_nothing_is_configured(settings: Any) -> None:
    settings.INTEGRATIONS = {
        name: {**config, "CLIENT_ID": "", "CLIENT_SECRET": ""}
        for name, config in django_settings.INTEGRATIONS.items()
    }

    reply = run("/connect", IdentityFactory(), ChatFactory())

    assert reply == "No integrations are set up here yet."


@pytest.mark.usefixtures("google_too")
def test_connect_lists_the_configured_providers_and_what_is_connected(
    github: FakeGitHub,
) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    connect_account(github, ann)

    reply = run("/connect", ann, chat)

    assert reply == (
        "Integrations:\n- GitHub: connected as @ann\n- Google: not connected: /connect google"
    )


def test_connect_lists_an_account_that_needs_reconnecting(github: FakeGitHub) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    connect_account(github, ann)
    IntegrationAccount.objects.update(status=IntegrationStatus.NEEDS_RECONNECT)

    assert "GitHub: needs reconnecting: /connect github" in run("/connect", ann, chat)


@pytest.mark.parametrize("chat_type", [ChatType.PRIVATE, ChatType.WEB, ChatType.API])
def test_connect_in_a_private_chat_answers_with_a_one_time_link(
    github: FakeGitHub, chat_type: str
) -> None:
    ann, chat = IdentityFactory(), ChatFactory(chat_type=chat_type)

    reply = run("/connect GitHub", ann, chat)

    link = ConnectLink.objects.get()
    assert (link.identity_id, link.chat_id, link.provider) == (ann.pk, chat.pk, "github")
    url = next(word for word in reply.split() if word.startswith("http"))
    assert url.startswith(f"{django_settings.AISYSTEM_PUBLIC_URL}connect/")
    assert "expires in 10 minutes" in reply


@pytest.mark.parametrize("chat_type", [ChatType.GROUP, ChatType.SUPERGROUP, ChatType.CHANNEL])
def test_connect_in_a_group_never_posts_a_link(github: FakeGitHub, chat_type: str) -> None:
    reply = run("/connect github", IdentityFactory(), ChatFactory(chat_type=chat_type))

    assert reply == PRIVATE_LINK_ONLY == "Ask me in a private chat: the link is personal."
    assert "http" not in reply
    assert not ConnectLink.objects.exists()


def test_connect_again_says_it_replaces_the_account(github: FakeGitHub) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    connect_account(github, ann)

    reply = run("/connect github", ann, chat)

    assert reply.startswith("You're connected as @ann; connecting again replaces it.")


@pytest.mark.parametrize("name", ["gitlab", "google"])
def test_connect_to_an_unknown_or_unconfigured_provider_lists_the_configured_ones(
    github: FakeGitHub, name: str
) -> None:
    reply = run(f"/connect {name}", IdentityFactory(), ChatFactory())

    assert reply == f"I can't connect `{name}`. You can connect: `github`."
    assert not ConnectLink.objects.exists()


# --- /connections and /disconnect -------------------------------------------------------------


def test_connections_lists_the_persons_accounts(github: FakeGitHub) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    connect_account(github, ann)
    created = IntegrationAccount.objects.get().created

    reply = run("/connections", ann, chat)

    assert reply == (
        "Your connected accounts:\n"
        f"- GitHub: @ann, connected, scopes: repo, read:user, connected {created:%Y-%m-%d}"
    )


def test_connections_of_someone_without_accounts(github: FakeGitHub) -> None:
    ann, bob, chat = IdentityFactory(), IdentityFactory(), ChatFactory()
    connect_account(github, ann)

    reply = run("/connections", bob, chat)

    assert reply == "You have no connected accounts. Send /connect to see what you can connect."


def test_disconnect_revokes_at_github_and_removes_the_account(github: FakeGitHub) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    token = connect_account(github, ann)

    reply = run("/disconnect github", ann, chat)

    assert reply == "Disconnected GitHub (@ann): access revoked at GitHub and removed here."
    assert not github.token_is_active(token)
    assert not IntegrationAccount.objects.exists()


def test_disconnect_says_so_when_github_cannot_confirm_the_revocation(
    github: FakeGitHub,
) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    token = connect_account(github, ann)
    github.fail_next("DELETE", "/api/v3/applications/", 500)

    reply = run("/disconnect github", ann, chat)

    assert reply.startswith("Removed your GitHub account (@ann) here, but GitHub could not")
    assert "GitHub answered 500" in reply
    assert not IntegrationAccount.objects.exists()
    assert github.token_is_active(token)


def test_disconnect_what_is_not_connected(github: FakeGitHub) -> None:
    ann, bob, chat = IdentityFactory(), IdentityFactory(), ChatFactory()
    connect_account(github, ann)

    assert run("/disconnect github", bob, chat) == "You have no GitHub account connected."
    assert run("/disconnect", bob, chat) == "Say which one, e.g. `/disconnect github`."
    assert IntegrationAccount.objects.count() == 1


# --- /confirm and /cancel -----------------------------------------------------------------------


def propose(identity: Identity, chat: Chat) -> int:
    proposal = CREATE_ISSUE.prepare({"repo": "ann/web", "title": "Fix login"})
    return pending_action_propose(
        tool=CREATE_ISSUE.spec.name,
        arguments=proposal.arguments,
        summary=proposal.summary,
        identity_id=identity.pk,
        chat_id=chat.pk,
    )


def test_confirm_runs_the_persons_newest_request(github: FakeGitHub) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    connect_account(github, ann)
    github.add_repo("ann", "web")
    propose(ann, chat)

    reply = run("/confirm", ann, chat)

    assert reply.startswith("Created issue #1 “Fix login” in ann/web: http")
    assert [issue.title for issue in github.repo("ann", "web").issues] == ["Fix login"]


def test_confirm_with_a_number_and_with_nonsense(github: FakeGitHub) -> None:
    ann, bob, chat = IdentityFactory(), IdentityFactory(), ChatFactory(chat_type=ChatType.GROUP)
    action_id = propose(ann, chat)

    assert run(f"/confirm {action_id}", bob, chat) == "That isn't yours to confirm."
    assert run("/confirm soon", ann, chat) == (
        "Add the request's number, or nothing for the newest one."
    )


def test_cancel_cancels_the_waiting_request_and_still_asks_to_stop_the_answer(
    github: FakeGitHub,
) -> None:
    ann, chat = IdentityFactory(), ChatFactory()
    action_id = propose(ann, chat)

    outcome = command_execute(name="cancel", args="", context=ctx(ann, chat))

    assert outcome.cancel_requested
    assert outcome.reply == "Cancelled: Create issue “Fix login” in ann/web."
    assert PendingAction.objects.get(pk=action_id).status == "cancelled"


def test_cancel_with_nothing_waiting_leaves_the_reply_to_the_processor() -> None:
    outcome = command_execute(name="cancel", args="", context=ctx(IdentityFactory(), ChatFactory()))

    assert (outcome.reply, outcome.cancel_requested) == ("", True)


def test_help_shows_the_integration_commands() -> None:
    text = help_text()

    for usage in ("/connect [provider]", "/connections", "/disconnect provider", "/confirm"):
        assert usage in text
