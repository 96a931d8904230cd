"""Sign-in lockout against the web process as the Procfile starts it (daphne, its flags and
all), from several loopback addresses: the whole 127.0.0.0/8 block reaches the loopback
interface, so each test client connects from an address of its own.

* a forged X-Forwarded-For neither dodges the lockout nor locks someone else out;
* behind a trusted proxy, guesses from many addresses are slowed down per username, and the
  owner still gets in.
"""

from __future__ import annotations

import http.client
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.browser import background, log_tail
from tests.factories import UserFactory
from tests.helpers import ROOT, free_port, subprocess_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd"
ATTACKER, VICTIM, PROXY = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def procfile_web(port: int) -> list[str]:
    """The Procfile's ``web`` command, as honcho would run it on ``port``."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    command = next(line for line in lines if line.startswith("web:")).partition(":")[2]
    args = shlex.split(command.replace("$PORT", str(port)))
    assert args[0] == "python"
    return [sys.executable, *args[1:]]


class Visitor:
    """One browser at one loopback address: it keeps its cookies and signs in with the form."""

    def __init__(self, port: int, address: str) -> None:
        self.port, self.address = port, address
        self.cookies: SimpleCookie = SimpleCookie()

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(self.address, 0)
        )
        cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in self.cookies.items())
        try:
            connection.request(method, path, body, {**(headers or {}), "Cookie": cookie})
            response = connection.getresponse()
            for value in response.headers.get_all("Set-Cookie") or []:
                self.cookies.load(value)
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()

    def sign_in(self, username: str, password: str, forwarded_for: str | None = None) -> Any:
        """POST the sign-in form; returns (status, page)."""
        extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        self.request("GET", "/accounts/login/", headers=extra)
        form = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": self.cookies["csrftoken"].value,
        }
        return self.request(
            "POST",
            "/accounts/login/",
            urlencode(form),
            {"Content-Type": "application/x-www-form-urlencoded", **extra},
        )


@pytest.fixture
def ada(settings: Any) -> Any:
    # A hasher the web process knows (the suite's fast MD5 is for this process only).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return UserFactory(username="ada", password=PASSWORD)


@contextmanager
def web(tmp_path: Path, **env: str) -> Iterator[int]:
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    log = tmp_path / "web.log"
    with background(procfile_web(port), environment, log, port):
        try:
            yield port
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- web ---\n{log_tail(log)}") from error


def test_forty_wrong_passwords_from_forty_forged_addresses_are_locked_out(
    ada: Any, tmp_path: Path, settings: Any
) -> None:
    # The slow-down would only make this test slow: the lock is what is tested here.
    with web(tmp_path, AISYSTEM_SIGNIN_SLOW_MAX_SECONDS="0") as port:
        guesser = Visitor(port, ATTACKER)
        statuses = [
            guesser.sign_in("ada", f"guess-{n}", forwarded_for=f"198.51.100.{n}")[0]
            for n in range(1, 41)
        ]
        owner_elsewhere = Visitor(port, VICTIM).sign_in("ada", PASSWORD)[0]

    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [200] * (limit - 1)  # the form again, with its error
    assert set(statuses[limit - 1 :]) == {429}, statuses
    assert owner_elsewhere == 302  # the lock is the guesser's address, not the account


def test_failures_sent_with_a_victims_forged_address_do_not_lock_the_victim_out(
    ada: Any, tmp_path: Path, settings: Any
) -> None:
    with web(tmp_path) as port:
        guesser, victim = Visitor(port, ATTACKER), Visitor(port, VICTIM)
        for n in range(settings.AXES_FAILURE_LIMIT):
            guesser.sign_in("ada", f"guess-{n}", forwarded_for=VICTIM)
        guesser_again = guesser.sign_in("ada", PASSWORD, forwarded_for=VICTIM)[0]
        victim_status, _ = victim.sign_in("ada", PASSWORD)

    assert victim_status == 302
    assert guesser_again == 429


def test_behind_a_trusted_proxy_many_addresses_are_slowed_down_not_locked(
    ada: Any, tmp_path: Path
) -> None:
    """Each guess comes from another client address through the proxy, so no address is
    locked; past AISYSTEM_SIGNIN_SLOW_AFTER failures for the username, each sign-in waits and
    says so, and the owner with the right password still gets in."""
    slow_after, guesses = 6, 9
    env = {
        "AISYSTEM_TRUSTED_PROXIES": f"{PROXY}/32",
        "AISYSTEM_SIGNIN_SLOW_AFTER": str(slow_after),
        "AISYSTEM_SIGNIN_SLOW_MAX_SECONDS": "1",
    }
    with web(tmp_path, **env) as port:
        proxy = Visitor(port, PROXY)
        pages = [
            proxy.sign_in("ada", f"guess-{n}", forwarded_for=f"198.51.100.{n}")
            for n in range(1, guesses + 1)
        ]
        owner = Visitor(port, PROXY).sign_in("ada", PASSWORD, forwarded_for="192.0.2.10")
        # The same forged header straight from a client is not believed: its own address is
        # the one counted (and locked after AISYSTEM_SIGNIN_FAILURES).
        direct = Visitor(port, ATTACKER)
        direct_statuses = [
            direct.sign_in("ada", f"guess-{n}", forwarded_for=f"203.0.113.{n}")[0] for n in range(5)
        ]

    assert [status for status, _ in pages] == [200] * guesses  # never locked
    slowed = ["each attempt waits a little first" in page for _, page in pages]
    assert slowed == [False] * slow_after + [True] * (guesses - slow_after)
    assert owner[0] == 302  # slowed down too, but in
    assert direct_statuses[-1] == 429
