"""The site's sign-in page (``/accounts/login/``), sign-out, and the front door ``/``."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY

from tests.factories import UserFactory

PASSWORD = "a-long-Passw0rd"


@pytest.fixture
def member() -> Any:
    return UserFactory(username="ada", password=PASSWORD)


@pytest.mark.django_db
def test_a_member_who_is_not_staff_signs_in_and_lands_on_the_chat(client: Any, member: Any) -> None:
    page = client.get("/accounts/login/?next=/chat/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="id_username"' in html and 'id="id_password"' in html
    assert 'value="/chat/"' in html  # ``next`` survives the form

    response = client.post(
        "/accounts/login/", {"username": "ada", "password": PASSWORD, "next": "/chat/"}
    )
    assert (response.status_code, response["Location"]) == (302, "/chat/")
    assert client.session[SESSION_KEY] == str(member.pk)
    assert client.get("/chat/").status_code == 200


@pytest.mark.django_db
def test_a_wrong_password_is_refused_in_plain_words_and_the_username_kept(
    client: Any, member: Any
) -> None:
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Please enter a correct username and password" in html
    assert 'value="ada"' in html
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_an_inactive_account_cannot_sign_in(client: Any) -> None:
    UserFactory(username="gone", password=PASSWORD, is_active=False)
    response = client.post("/accounts/login/", {"username": "gone", "password": PASSWORD})
    assert response.status_code == 200
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_next_never_leads_off_the_site(client: Any, member: Any) -> None:
    response = client.post(
        "/accounts/login/",
        {"username": "ada", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_sign_out_is_a_post_and_returns_to_the_sign_in_page(client: Any, member: Any) -> None:
    client.force_login(member)
    assert client.get("/accounts/logout/").status_code == 405  # a link cannot sign you out
    response = client.post("/accounts/logout/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_the_front_door_sends_staff_to_the_admin_and_everyone_else_to_the_chat(
    client: Any, member: Any
) -> None:
    assert client.get("/")["Location"] == "/chat/"  # …which asks anonymous visitors to sign in
    client.force_login(member)
    assert client.get("/")["Location"] == "/chat/"
    client.force_login(UserFactory(username="grace", is_staff=True))
    assert client.get("/")["Location"] == "/admin/"


@pytest.mark.django_db
def test_the_chat_page_signs_out_through_the_sites_own_page(client: Any, member: Any) -> None:
    client.force_login(member)
    html = client.get("/chat/").content.decode()
    assert 'action="/accounts/logout/"' in html


@pytest.mark.django_db
def test_only_a_staff_chat_page_knows_where_access_rules_are_added(
    client: Any, member: Any
) -> None:
    client.force_login(member)
    assert "data-rules-url" not in client.get("/chat/").content.decode()
    client.force_login(UserFactory(username="grace", is_staff=True))
    html = client.get("/chat/").content.decode()
    assert 'data-rules-url="/admin/aisystem/accessrule/add/?transport=web&amp;action=allow"' in html


@pytest.mark.django_db
def test_staff_are_told_on_the_chat_page_when_no_claude_key_is_configured(
    client: Any, member: Any, settings: Any
) -> None:
    settings.ANTHROPIC_API_KEY = ""
    client.force_login(member)
    assert "No usable Claude API key" not in client.get("/chat/").content.decode()
    client.force_login(UserFactory(username="grace", is_staff=True))
    assert "No usable Claude API key" in client.get("/chat/").content.decode()
    settings.ANTHROPIC_API_KEY = "sk-ant-configured"
    assert 'id="staff-note"' not in client.get("/chat/").content.decode()


@pytest.mark.django_db
def test_the_favicon_is_the_sites_icon_not_a_404(client: Any) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].startswith("/static/favicon.")
    assert response["Location"].endswith(".svg")


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_the_sign_in_for_a_while(
    client: Any, member: Any, settings: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/accounts/login/", {"username": "ada", "password": "guess"})
        assert response.status_code == 200  # the form again, with its error
    locked = client.post("/accounts/login/", {"username": "ada", "password": "guess"})
    right_password = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})

    assert locked.status_code == right_password.status_code == 429
    assert "Too many failed sign-ins" in right_password.content.decode()
    assert "Try again in 15 minutes." in right_password.content.decode()
    assert SESSION_KEY not in client.session
    # The admin's sign-in is the same lock: no second door to guess at.
    admin = client.post("/admin/login/", {"username": "ada", "password": PASSWORD})
    assert admin.status_code == 429


@pytest.mark.django_db
def test_a_successful_sign_in_clears_the_failed_attempts(
    client: Any, member: Any, settings: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": "ada", "password": "guess"})
    assert (
        client.post("/accounts/login/", {"username": "ada", "password": PASSWORD}).status_code
        == 302
    )
    client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"username": "ada", "password": "guess"})
    assert response.status_code == 200  # counting starts again
