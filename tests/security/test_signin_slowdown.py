"""The per-username slow-down (aisystem/accounts/slowdown.py): its figures, its counting across
addresses, and what the sign-in page says. test_signin_lockout.py runs it in daphne."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from aisystem.accounts.slowdown import signin_delay_seconds, username_recent_failures
from tests.factories import UserFactory

PASSWORD = "a-long-Passw0rd"


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (9, 0.0), (10, 1.0), (11, 2.0), (12, 4.0), (13, 8.0), (14, 10.0), (500, 10.0)],
)
def test_the_wait_doubles_past_the_threshold_up_to_the_cap(failures: int, delay: float) -> None:
    figures = {"slow_after": 10, "first_delay": 1.0, "max_delay": 10.0}
    assert signin_delay_seconds(failures, **figures) == delay


def test_a_cap_of_zero_turns_the_slow_down_off() -> None:
    assert signin_delay_seconds(99, slow_after=1, first_delay=1.0, max_delay=0) == 0.0


@pytest.fixture
def behind_a_proxy(settings: Any) -> Client:
    """Requests through a trusted proxy at 10.0.0.2, which forwards the client's address."""
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.2/32"),)
    settings.SIGNIN_SLOWDOWN = {
        "AFTER_FAILURES": 3,
        "FIRST_DELAY_SECONDS": 0.001,
        "MAX_DELAY_SECONDS": 0.002,
    }
    return Client(REMOTE_ADDR="10.0.0.2")


def guess(client: Client, username: str, password: str, address: str) -> Any:
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        HTTP_X_FORWARDED_FOR=address,
    )


@pytest.mark.django_db
def test_failures_for_one_username_are_counted_over_every_address(behind_a_proxy: Client) -> None:
    UserFactory(username="ada", password=PASSWORD)
    for n in range(4):
        guess(behind_a_proxy, "ada", "wrong", f"198.51.100.{n}")
    guess(behind_a_proxy, "grace", "wrong", "198.51.100.9")
    assert username_recent_failures("ada") == 4
    assert username_recent_failures("grace") == 1
    assert username_recent_failures("nobody") == 0


@pytest.mark.django_db
def test_past_the_threshold_the_page_says_why_it_was_slow_and_the_owner_gets_in(
    behind_a_proxy: Client,
) -> None:
    member = UserFactory(username="ada", password=PASSWORD)
    pages = [guess(behind_a_proxy, "ada", "wrong", f"198.51.100.{n}") for n in range(5)]
    notices = ["each attempt waits a little first" in page.content.decode() for page in pages]
    assert [page.status_code for page in pages] == [200] * 5  # no address was locked
    assert notices == [False, False, False, True, True]

    owner = guess(behind_a_proxy, "ada", PASSWORD, "192.0.2.10")
    assert owner.status_code == 302
    assert behind_a_proxy.session[SESSION_KEY] == str(member.pk)


@pytest.mark.django_db
def test_the_page_of_an_unslowed_sign_in_has_no_notice(behind_a_proxy: Client) -> None:
    UserFactory(username="ada", password=PASSWORD)
    page = guess(behind_a_proxy, "ada", "wrong", "198.51.100.1")
    assert "signin-slowed" not in page.content.decode()
