"""The browser chat's Connections panel: what it lists, and its Connect and Disconnect, for
the signed-in user's own accounts only. The provider is the GitHub fake on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from aisystem.chat.services import web_participant_ensure
from aisystem.models import ConnectLink, IntegrationAccount
from tests.factories import UserFactory
from tests.fakes.github import FakeGitHub
from tests.integrations import conftest as integration_fixtures
from tests.integrations.accounts import github_account

github = integration_fixtures.github  # the GitHub fake, configured as staff would

pytestmark = pytest.mark.django_db

LIST, CONNECT, DISCONNECT = (
    "/chat/connections/",
    "/chat/connections/github/connect/",
    "/chat/connections/github/disconnect/",
)


@pytest.fixture
def ada() -> Any:
    return UserFactory(username="ada", first_name="Ada")


def connected(fake: FakeGitHub, user: Any) -> IntegrationAccount:
    """``user`` has GitHub connected, as @<their username>."""
    identity, chat = web_participant_ensure(user_id=user.pk)
    return github_account(fake, identity, chat)


def signed_in(user: Any) -> Client:
    """A browser of ``user`` that sends CSRF tokens only when told, as a real one."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/chat/")  # sets the CSRF cookie, as opening the page does
    return client


def csrf(client: Client) -> dict[str, str]:
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def test_the_panel_lists_each_configured_provider_with_the_users_own_account(
    ada: Any, github: FakeGitHub
) -> None:
    account = connected(github, ada)
    connected(github, UserFactory(username="bob"))  # someone else's: never shown

    answer = signed_in(ada).get(LIST)

    assert answer.status_code == 200
    assert answer.json() == {
        "connections": [
            {
                "provider": "github",
                "label": "GitHub",
                "account": {"id": account.pk, "login": "@ada", "status": "connected"},
                "connect_url": CONNECT,
                "disconnect_url": DISCONNECT,
            }
        ]
    }  # Google is not configured, so not offered


def test_a_provider_not_connected_is_offered_with_no_account(ada: Any, github: FakeGitHub) -> None:
    (only,) = signed_in(ada).get(LIST).json()["connections"]

    assert (only["provider"], only["account"]) == ("github", None)


def test_the_page_offers_the_panel_only_when_a_provider_is_configured(
    ada: Any, settings: Any
) -> None:
    client = signed_in(ada)
    assert 'id="connections-toggle"' not in client.get("/chat/").content.decode()
    assert client.get(LIST).json() == {"connections": []}

    settings.INTEGRATIONS = {
        **settings.INTEGRATIONS,
        "github": {**settings.INTEGRATIONS["github"], "CLIENT_ID": "id", "CLIENT_SECRET": "s"},
    }
    page = client.get("/chat/").content.decode()
    assert 'id="connections-toggle"' in page
    assert 'aria-controls="connections"' in page and 'aria-live="polite"' in page


def test_anonymous_visitors_get_nothing(github: FakeGitHub) -> None:
    anonymous = Client()

    assert anonymous.get(LIST).status_code == 401
    assert anonymous.post(DISCONNECT).status_code == 401
    assert anonymous.post(CONNECT)["Location"].startswith("/accounts/login/")
    assert ConnectLink.objects.count() == 0


def test_connect_opens_a_fresh_one_time_link_for_the_user(ada: Any, github: FakeGitHub) -> None:
    client = signed_in(ada)
    token = client.cookies["csrftoken"].value

    first = client.post(CONNECT, {"csrfmiddlewaretoken": token})
    second = client.post(CONNECT, {"csrfmiddlewaretoken": token})

    assert first.status_code == second.status_code == 303
    assert first["Location"].startswith("http://testserver/connect/")
    assert first["Location"] != second["Location"]  # each press, a link of its own
    link = ConnectLink.objects.select_related("identity", "chat").order_by("pk").first()
    assert link is not None
    assert (link.identity.transport, link.identity.user_id) == ("web", ada.pk)
    assert link.chat is not None and link.chat.external_id == f"user-{ada.pk}"
    assert link.provider == "github"


def test_connect_and_disconnect_need_the_csrf_token(ada: Any, github: FakeGitHub) -> None:
    account = connected(github, ada)
    client = signed_in(ada)

    assert client.post(CONNECT).status_code == 403
    assert client.post(DISCONNECT).status_code == 403
    assert ConnectLink.objects.count() == 0
    assert IntegrationAccount.objects.filter(pk=account.pk).exists()


def test_connect_to_a_provider_not_set_up_is_not_found(ada: Any, github: FakeGitHub) -> None:
    client = signed_in(ada)
    token = client.cookies["csrftoken"].value

    answer = client.post("/chat/connections/google/connect/", {"csrfmiddlewaretoken": token})

    assert answer.status_code == 404
    assert ConnectLink.objects.count() == 0


def test_disconnect_revokes_the_token_at_github_and_removes_the_account(
    ada: Any, github: FakeGitHub
) -> None:
    account = connected(github, ada)
    token = account.extra_data["access_token"]
    client = signed_in(ada)

    answer = client.post(DISCONNECT, **csrf(client))

    assert answer.json() == {
        "message": "Disconnected GitHub (@ada): access revoked at GitHub and removed here."
    }
    assert not github.token_is_active(token)
    assert not IntegrationAccount.objects.filter(pk=account.pk).exists()
    assert client.get(LIST).json()["connections"][0]["account"] is None


def test_disconnect_never_reaches_someone_elses_account(ada: Any, github: FakeGitHub) -> None:
    bobs = connected(github, UserFactory(username="bob"))
    client = signed_in(ada)

    answer = client.post(DISCONNECT, **csrf(client))

    assert answer.json() == {"message": "You have no GitHub account connected."}
    assert IntegrationAccount.objects.filter(pk=bobs.pk).exists()
    assert github.token_is_active(bobs.extra_data["access_token"])
