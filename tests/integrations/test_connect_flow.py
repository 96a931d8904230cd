"""/connect's link, end to end: our pages, the real social-auth flow and the real `requests`
against GitHub and Google on loopback (tests/fakes), the account bound to the person who
asked, the chat told through the outbox, and every way a link or a flow can go wrong."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from django.test import Client

from aisystem.integrations.links import connect_link_create
from aisystem.models import (
    ChatType,
    ConnectLink,
    Event,
    Identity,
    IntegrationAccount,
    OutboxItem,
    Transport,
)
from tests.factories import ChatFactory, IdentityFactory, UserFactory
from tests.fakes.github import FakeGitHub
from tests.fakes.google import FakeGoogle

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start(client: Client, link: str) -> str:
    """Press the link page's button; returns where it sends the browser (the provider)."""
    answer = client.post(_path(link))
    assert answer.status_code == 302, answer.content
    return str(answer["Location"])


def github_approves(authorize_url: str) -> str:
    """The person approves at GitHub: the callback address with code and state."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def alice_in_private_chat() -> tuple[Identity, int]:
    alice = IdentityFactory(username="alice", display_name="Alice")
    chat = ChatFactory(chat_type=ChatType.PRIVATE, external_id=alice.external_id)
    return alice, chat.pk


def test_github_connects_to_the_telegram_user_who_asked_and_the_chat_is_told(
    github: FakeGitHub,
) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    alice, chat_pk = alice_in_private_chat()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    client = Client()

    assert link.startswith("http://testserver/connect/")
    page = client.get(_path(link))
    assert page.status_code == 200
    assert "Connect <strong>GitHub</strong> to the assistant for" in page.text
    assert "Telegram user @alice" in page.text

    authorize = start(client, link)
    sent = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(github.authorize_url)
    assert sent["state"][0]
    assert sent["code_challenge_method"] == ["S256"]
    assert sent["redirect_uri"] == ["http://testserver/oauth/complete/github/"]

    done = client.get(_path(github_approves(authorize)))

    assert done.status_code == 200, done.content
    assert "<strong>GitHub</strong> is connected as <strong>@octocat</strong>" in done.text
    assert "_auth_user_id" not in client.session  # connecting signs nobody in
    alice.refresh_from_db()
    assert alice.user is not None and not alice.user.has_usable_password()
    account = IntegrationAccount.objects.get(user=alice.user, provider="github")
    assert (account.login, account.status, account.notify_chat_id) == (
        "@octocat",
        "connected",
        chat_pk,
    )
    assert "repo" in account.scopes.split()
    assert account.extra_data["access_token"]
    notice = OutboxItem.objects.get(chat_id=chat_pk)
    assert (notice.transport, notice.text) == (Transport.TELEGRAM, "GitHub connected as @octocat.")
    event = Event.objects.get(kind="integration.connected")
    assert account.extra_data["access_token"] not in str(event.data) + event.summary
    assert ConnectLink.objects.get().account_id == account.pk


def test_the_token_is_encrypted_in_the_database(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    alice, chat_pk = alice_in_private_chat()
    client = Client()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    client.get(_path(github_approves(start(client, link))))

    token = IntegrationAccount.objects.get().extra_data["access_token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT extra_data FROM aisystem_integrationaccount")
        (raw,) = cursor.fetchone()
    assert token not in str(raw)


def test_a_link_works_once(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    alice, chat_pk = alice_in_private_chat()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    first = Client()
    start(first, link)

    again = Client().post(_path(link))
    reopened = Client().get(_path(link))

    assert again.status_code == 410 and "used already" in again.text
    assert reopened.status_code == 410 and "used already" in reopened.text


def test_a_tampered_link_changes_nothing(github: FakeGitHub) -> None:
    alice, chat_pk = alice_in_private_chat()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    forged = link.rstrip("/")[:-3] + "abc/"

    page = Client().post(_path(forged))

    assert page.status_code == 410 and "cut or changed" in page.text
    assert ConnectLink.objects.get().started_at is None


def test_an_expired_link_changes_nothing(github: FakeGitHub) -> None:
    alice, chat_pk = alice_in_private_chat()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    ConnectLink.objects.update(expires_at="2000-01-01T00:00:00Z")

    page = Client().post(_path(link))

    assert page.status_code == 410 and "expired" in page.text
    assert not IntegrationAccount.objects.exists()


def test_a_callback_whose_state_does_not_match_connects_nothing(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    alice, chat_pk = alice_in_private_chat()
    client = Client()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    callback = github_approves(start(client, link))
    forged = callback.replace("state=", "state=forged")

    page = client.get(_path(forged))

    assert page.status_code == 400
    assert "did not match this browser session" in page.text
    assert not IntegrationAccount.objects.exists()
    assert not OutboxItem.objects.exists()


def test_a_callback_in_another_browser_connects_nothing(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    alice, chat_pk = alice_in_private_chat()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")
    callback = github_approves(start(Client(), link))

    page = Client().get(_path(callback))

    assert page.status_code == 400
    assert not IntegrationAccount.objects.exists()


def test_an_account_connected_to_another_person_is_refused(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    alice, alice_chat = alice_in_private_chat()
    bob = IdentityFactory(username="bob")
    bob_chat = ChatFactory(chat_type=ChatType.PRIVATE).pk
    for identity, chat in ((alice, alice_chat), (bob, bob_chat)):
        client = Client()
        link = connect_link_create(identity_id=identity.pk, chat_id=chat, provider="github")
        page = client.get(_path(github_approves(start(client, link))))

    assert page.status_code == 400
    assert "already connected to another person" in page.text
    assert IntegrationAccount.objects.get().user_id == Identity.objects.get(pk=alice.pk).user_id
    assert not OutboxItem.objects.filter(chat_id=bob_chat).exists()


def test_a_person_who_cancels_at_the_provider_connects_nothing(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    github.deny_next_authorization()
    alice, chat_pk = alice_in_private_chat()
    client = Client()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")

    page = client.get(_path(github_approves(start(client, link))))

    assert page.status_code == 400
    assert "declined" in page.text
    assert not IntegrationAccount.objects.exists()


def test_a_browser_user_connects_to_their_own_user(github: FakeGitHub) -> None:
    github.add_user("octocat", email="octo@example.test")
    github.sign_in_as("octocat")
    user = UserFactory(username="ann")
    ann = IdentityFactory(transport=Transport.WEB, external_id=str(user.pk), user=user)
    chat = ChatFactory(transport=Transport.WEB, chat_type=ChatType.WEB)
    client = Client()
    client.force_login(user)
    link = connect_link_create(identity_id=ann.pk, chat_id=chat.pk, provider="github")

    client.get(_path(github_approves(start(client, link))))

    assert IntegrationAccount.objects.get().user_id == user.pk
    assert OutboxItem.objects.get(chat=chat).transport == Transport.WEB


def test_an_unconfigured_provider_is_not_offered(settings: object) -> None:
    alice, chat_pk = alice_in_private_chat()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="github")

    page = Client().get(_path(link))

    assert page.status_code == 410 and "no longer set up" in page.text


def test_google_connects_with_openid_connect_pkce_and_offline_access(google: FakeGoogle) -> None:
    alice, chat_pk = alice_in_private_chat()
    client = Client()
    link = connect_link_create(identity_id=alice.pk, chat_id=chat_pk, provider="google")
    authorize = start(client, link)
    sent = parse_qs(urlsplit(authorize).query)
    assert sent["access_type"] == ["offline"] and sent["code_challenge_method"] == ["S256"]

    with requests.Session() as browser:
        callback = google.authorize(browser, authorize, sub="alice-sub", email="a@example.test")
    done = client.get(_path(callback))

    assert done.status_code == 200, done.content
    account = IntegrationAccount.objects.get(provider="google")
    assert account.login == "a@example.test"
    assert account.extra_data["refresh_token"]
    assert account.expires_at is not None
    assert OutboxItem.objects.get().text == "Google connected as a@example.test."
