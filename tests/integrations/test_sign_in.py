"""Sign in with GitHub or Google: only people who exist here, never staff, and by e-mail only
when the provider says the address is verified."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from django.test import Client

from aisystem.models import IntegrationAccount
from tests.factories import UserFactory
from tests.fakes.github import FakeGitHub
from tests.fakes.google import FakeGoogle

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in_with_github(client: Client) -> object:
    begin = client.post("/oauth/login/github/")
    assert begin.status_code == 302
    approved = requests.get(begin["Location"], allow_redirects=False, timeout=10)
    return client.get(_path(approved.headers["Location"]))


def test_the_sign_in_page_offers_only_configured_providers(github: FakeGitHub) -> None:
    page = Client().get("/accounts/login/")

    assert "Sign in with GitHub" in page.text
    assert "Sign in with Google" not in page.text


def test_without_providers_the_sign_in_page_has_only_the_password_form() -> None:
    assert "Sign in with" not in Client().get("/accounts/login/").text


def test_a_verified_email_signs_in_the_one_user_who_has_it(github: FakeGitHub) -> None:
    ann = UserFactory(username="ann", email="ann@example.test")
    github.add_user("ann-gh", email="ann@example.test", email_verified=True)
    github.sign_in_as("ann-gh")
    client = Client()

    done = sign_in_with_github(client)

    assert done.status_code == 302 and done["Location"] == "/chat/"  # type: ignore[attr-defined]
    assert client.session["_auth_user_id"] == str(ann.pk)
    assert IntegrationAccount.objects.get().user_id == ann.pk


def test_an_unverified_email_signs_in_nobody(github: FakeGitHub) -> None:
    UserFactory(username="ann", email="ann@example.test")
    github.add_user("mallory", email="ann@example.test", email_verified=False)
    github.sign_in_as("mallory")
    client = Client()

    page = sign_in_with_github(client)

    assert page.status_code == 400  # type: ignore[attr-defined]
    assert "No one here has connected this account" in page.text  # type: ignore[attr-defined]
    assert "_auth_user_id" not in client.session
    assert not IntegrationAccount.objects.exists()


def test_sign_in_never_creates_a_user(github: FakeGitHub) -> None:
    github.add_user("stranger", email="stranger@example.test")
    github.sign_in_as("stranger")
    before = UserFactory._meta.model.objects.count()

    page = sign_in_with_github(Client())

    assert page.status_code == 400  # type: ignore[attr-defined]
    assert UserFactory._meta.model.objects.count() == before


def test_a_staff_account_never_signs_in_this_way(github: FakeGitHub) -> None:
    UserFactory(username="root", email="root@example.test", is_staff=True, is_superuser=True)
    github.add_user("root-gh", email="root@example.test", email_verified=True)
    github.sign_in_as("root-gh")
    client = Client()

    page = sign_in_with_github(client)

    assert page.status_code == 400  # type: ignore[attr-defined]
    assert "Staff accounts sign in with their username and password" in page.text  # type: ignore[attr-defined]
    assert "_auth_user_id" not in client.session


def test_google_signs_in_by_a_verified_address(google: FakeGoogle) -> None:
    ann = UserFactory(username="ann", email="ann@example.test")
    client = Client()
    begin = client.post("/oauth/login/google/")
    with requests.Session() as browser:
        callback = google.authorize(browser, begin["Location"], sub="s1", email="ann@example.test")

    done = client.get(_path(callback))

    assert done.status_code == 302
    assert client.session["_auth_user_id"] == str(ann.pk)


@pytest.mark.parametrize("path", ["/oauth/login/google/", "/oauth/complete/google/?code=x"])
def test_an_unconfigured_providers_social_auth_urls_answer_404(path: str) -> None:
    answer = Client().post(path) if "login" in path else Client().get(path)

    assert answer.status_code == 404
    assert "no such provider" in answer.text
