"""The live feed end to end: headless Chromium (Debian's) driven by Playwright, against daphne
and fakeclaude in processes of their own, sharing this test's database.

A staff member signs in through the real sign-in page and watches ``/live/`` while another
process sends messages through ``POST /api/v1/messages``; the assertions are on what the page
shows. Every wait is bounded, and a failure carries the tail of daphne's log and a screenshot.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from aisystem.events import PendingEvent, events_record, system_event_emit
from aisystem.models import Event
from aisystem.services.tokens import api_token_create
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    background,
    chromium,
    daphne_args,
    fakeclaude_args,
    log_tail,
    process_env,
    watch_policy_violations,
)
from tests.conftest import require_service
from tests.factories import MessageFactory, UserFactory
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000  # for any one thing to show on a machine shared with other work
PASSWORD = "a-long-Passw0rd"
REPLY = "Every step of this answer shows up in the live feed."
DELIVERED = "answered · delivered"

# Sends one message through the REST API and prints the JSON answer: run in its own
# interpreter, so the message comes from another process, as an API client's would.
SEND = """
import json, os, sys, urllib.request
request = urllib.request.Request(
    sys.argv[1],
    data=json.dumps({"chat_id": "ops", "user_id": "ada", "text": sys.argv[2]}).encode(),
    headers={"Authorization": "Bearer " + os.environ["API_TOKEN"],
             "Content-Type": "application/json"},
)
with urllib.request.urlopen(request, timeout=50) as response:
    print(response.read().decode())
"""

# Notes each status a journey row shows, as it is drawn: a row can pass through a state
# between two polls of Playwright's.
WATCH_STATUSES = """
() => {
  window.statusesSeen = [];
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      for (const added of mutation.addedNodes) {
        if (added.matches && added.matches("tr.journey")) {
          const status = added.querySelector("td.status").textContent;
          window.statusesSeen.push([Number(added.dataset.messageId), status]);
        }
      }
    }
  }).observe(document.querySelector("#journeys tbody"), { childList: true });
}
"""

# How a socket to /ws/live/ opened from the page ends: its close code, or null after 20 s.
SOCKET_CLOSE_CODE = """
() => new Promise((resolve) => {
  const socket = new WebSocket("ws://" + location.host + "/ws/live/");
  const timer = setTimeout(() => resolve(null), 20000);
  socket.addEventListener("close", (event) => { clearTimeout(timer); resolve(event.code); });
})
"""


def refusal_code(page: Any) -> int | None:
    """The close code of a live-feed socket opened from ``page``. Daphne now and then drops
    a connection closed right after its handshake without sending the close frame (the
    browser reports 1006, abnormal closure; seen once in CI on PostgreSQL): a second socket
    then shows the code the server sent. Any other code, or an open socket, is returned as is."""
    code: int | None = page.evaluate(SOCKET_CLOSE_CODE)
    return page.evaluate(SOCKET_CLOSE_CODE) if code == 1006 else code


CHART_MESSAGES = """
() => Array.from(document.querySelectorAll("#chart title")).reduce(
  (sum, title) => sum + Number((title.textContent.match(/: (\\d+) messages/) || [0, 0])[1]), 0)
"""


@dataclass
class LiveSite:
    """daphne and fakeclaude running, a Chromium to look with, and what its pages reported."""

    port: int
    env: dict[str, str]
    logs: Path
    browser: Any
    daphne: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    starts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.logs / f"daphne-{self.starts}.log"

    def start_daphne(self) -> None:
        self.starts += 1
        self.daphne.enter_context(background(daphne_args(self.port), self.env, self.log, self.port))

    @contextlib.contextmanager
    def daphne_stopped(self) -> Iterator[None]:
        """Stop daphne for the block, then start it again on the same port."""
        self.daphne.close()
        try:
            yield
        finally:
            self.start_daphne()

    def new_page(self) -> Any:
        """A page in a context of its own (its own cookies) whose script errors and failed
        loads on ``/live/`` are noted in ``errors``, and so are the Content-Security-Policy
        violations of every page it opens. (The admin's sign-in page has no icon: Chromium's
        request for /favicon.ico there is not the live feed's.)"""
        page = self.browser.new_context().new_page()
        watch_policy_violations(page, into=self.errors)

        def note(text: str) -> None:
            if urlsplit(page.url).path == "/live/":
                self.errors.append(text)

        page.on("console", lambda m: m.type == "error" and note(f"{m.text} {m.location}"))
        page.on("pageerror", lambda error: note(f"page error: {error}"))
        return page

    @contextlib.contextmanager
    def explained(self, page: Any, name: str) -> Iterator[None]:
        """Turn any failure inside into one that shows the page (saved as ``name``-failed.png)
        and the end of daphne's log."""
        try:
            yield
        except Exception as error:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{name}-failed.png"), full_page=True)
            raise AssertionError(
                f"{error}\npage errors: {self.errors}\n--- {self.log.name} ---\n"
                + log_tail(self.log)
            ) from error


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[LiveSite]:
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    # A hasher the web process knows (the suite's fast MD5 is for this process only).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    from playwright.sync_api import sync_playwright

    claude_port, web_port = free_port(), free_port()
    env = process_env(claude_port)
    # The first token comes after 2 s: long enough to see a message in flight.
    fake = fakeclaude_args(claude_port, "--ttft", "2", "--tps", "50", "--reply", REPLY)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (
        background(fake, env, tmp_path / "fakeclaude.log", claude_port),
        sync_playwright() as playwright,
    ):
        browser = chromium(playwright)
        site = LiveSite(port=web_port, env=env, logs=tmp_path, browser=browser)
        try:
            site.start_daphne()
            yield site
        finally:
            browser.close()
            site.daphne.close()


def send_in_another_process(site: LiveSite, token: str, text: str) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "API_TOKEN": token}
    url = f"{site.base}/api/v1/messages"
    return subprocess.Popen(
        [sys.executable, "-c", SEND, url, text],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def answer_of(site: LiveSite, sender: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = sender.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        sender.kill()
        sender.communicate()
        raise AssertionError(f"the API call did not return:\n{log_tail(site.log)}") from None
    assert sender.returncode == 0, f"{err}\n--- daphne.log ---\n{log_tail(site.log)}"
    return dict(json.loads(out))


def a_rejected_telegram_message() -> int:
    """A journey stored before the page opens (it comes with the history): from Telegram,
    denied at the gate."""
    message = MessageFactory(text="Seeded from Telegram")
    events_record(
        [
            PendingEvent(
                kind="message.received",
                summary="Text from @grace",
                data={"kind": "text", "text": message.text},
            ),
            PendingEvent(
                kind="gate.denied",
                summary="Denied: no rule",
                level=Event.Level.WARNING,
                data={"reason": "no_rule"},
            ),
            PendingEvent(
                kind="message.rejected",
                summary="Rejected in 12 ms",
                level=Event.Level.WARNING,
                data={"status": "rejected", "delivered": False, "timings_ms": {"total": 12}},
            ),
        ],
        transport="telegram",
        chat_id=message.chat_id,
        message_id=message.pk,
    )
    return int(message.pk)


def a_watcher(username: str) -> Any:
    """A staff member allowed to view messages, which is what the live feed asks for."""
    user = UserFactory(username=username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="aisystem", codename="view_message")
    )
    return user


def sign_in(page: Any, site: LiveSite, username: str) -> None:
    page.goto(f"{site.base}/live/")
    assert page.url == f"{site.base}/admin/login/?next=/live/"
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{site.base}/live/", timeout=WAIT_MS)


def test_in_chromium_staff_watch_an_api_message_travel_to_delivered(site: LiveSite) -> None:
    from playwright.sync_api import expect

    a_watcher("grace")
    _, token = api_token_create(name="browser test")  # with an allow rule: the gate admits it
    seeded = a_rejected_telegram_message()
    page = site.new_page()
    with site.explained(page, "live"):
        sign_in(page, site, "grace")
        expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#connection")).to_have_class(re.compile(r"\blive\b"))
        old = page.locator(f'tr.journey[data-message-id="{seeded}"]')
        expect(old.locator("td.status")).to_have_text("rejected", timeout=WAIT_MS)
        expect(old.locator("td.where")).to_have_text(re.compile(r"^telegram"))
        page.evaluate(WATCH_STATUSES)

        answer = answer_of(site, send_in_another_process(site, token, "How is the weather?"))
        assert answer["status"] == "answered", answer
        row = page.locator(f'tr.journey[data-message-id="{answer["message_id"]}"]')
        expect(row.locator("td.status")).to_have_text(DELIVERED, timeout=WAIT_MS)
        expect(row.locator("td.steps .step")).to_have_text(
            [
                "received",
                "allowed",
                re.compile(r"^context: \S+ · 0 turns$"),
                re.compile(r"^route: \S+ → \S+"),
                re.compile(r"^agent: .*\d+\+\d+ tok"),
                DELIVERED,
            ]
        )
        expect(row.locator("td.where")).to_have_text(re.compile(r"^api · #\d+$"))
        expect(row.locator("td.text")).to_have_text("How is the weather?")
        expect(row.locator("td.latency")).to_have_text(re.compile(r"\d+(\.\d+)? m?s$"))
        expect(row.locator("td.usage")).to_have_text(re.compile(r"^\d+ · \$\d+\.\d{4}$"))
        # Every column is on screen at 1280 pixels wide, none behind a scroll bar.
        box = "document.querySelector('.journeys-box')"
        assert page.evaluate(f"{box}.scrollWidth <= {box}.clientWidth"), "the table overflows"
        statuses = [s for i, s in page.evaluate("window.statusesSeen") if i == answer["message_id"]]
        assert statuses[0] == "received" and statuses[-1] == DELIVERED, statuses

        row.click()  # the row opens onto its events, one per step
        expect(page.locator("tr.details .event-list li code.kind")).to_have_text(
            [
                "message.received",
                "gate.allowed",
                "context.built",
                "route.planned",
                "agent.ok",
                "message.answered",
            ],
            timeout=WAIT_MS,
        )
        row.click()
        expect(page.locator("tr.details")).to_have_count(0, timeout=WAIT_MS)

        counter = lambda name: page.locator(f'[data-counter="{name}"]')  # noqa: E731
        expect(counter("messages")).to_have_text("2", timeout=WAIT_MS)
        expect(counter("delivered")).to_have_text("1")
        expect(counter("answered")).to_have_text("1")
        expect(counter("rejected")).to_have_text("1")
        expect(counter("inflight")).to_have_text("0")
        expect(counter("p50")).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))
        expect(counter("tokens")).not_to_have_text("0")
        page.wait_for_function(f"({CHART_MESSAGES})() === 2", timeout=WAIT_MS)
        expect(page.locator("#chart circle.dot.latency").first).to_be_visible()
        expect(page.locator("#chart text.tick.latency")).to_have_text(re.compile(r"\d m?s$"))
        page.screenshot(path=str(ARTIFACTS / "live.png"), full_page=True)

        # Filters hide what does not match, counters follow, and clearing shows everything.
        page.select_option("#filter-transport", "api", timeout=WAIT_MS)
        expect(old).to_be_hidden(timeout=WAIT_MS)
        expect(row).to_be_visible()
        expect(counter("messages")).to_have_text("1", timeout=WAIT_MS)
        page.select_option("#filter-transport", "")
        page.select_option("#filter-status", "rejected", timeout=WAIT_MS)
        expect(row).to_be_hidden(timeout=WAIT_MS)
        expect(old).to_be_visible()
        expect(counter("rejected")).to_have_text("1", timeout=WAIT_MS)
        expect(counter("delivered")).to_have_text("0", timeout=WAIT_MS)
        page.screenshot(path=str(ARTIFACTS / "live-filtered.png"), full_page=True)
        page.click("#filters button[type=reset]")
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(old).to_be_visible()
        expect(counter("messages")).to_have_text("2", timeout=WAIT_MS)

        # Paused, the page holds what arrives; resumed, it shows it.
        page.click("#pause")
        expect(page.locator("#pause")).to_have_text("Resume")
        answer = answer_of(site, send_in_another_process(site, token, "And tomorrow?"))
        assert answer["status"] == "answered", answer
        later = page.locator(f'tr.journey[data-message-id="{answer["message_id"]}"]')
        expect(page.locator("#buffered")).to_have_text(
            re.compile(r"^\d+ new while paused$"), timeout=WAIT_MS
        )
        expect(later).to_have_count(0)
        expect(counter("messages")).to_have_text("2")
        page.screenshot(path=str(ARTIFACTS / "live-paused.png"), full_page=True)
        page.click("#pause")
        expect(page.locator("#pause")).to_have_text("Pause")
        expect(later.locator("td.status")).to_have_text(DELIVERED, timeout=WAIT_MS)
        expect(page.locator("#buffered")).to_have_text("")
        expect(counter("messages")).to_have_text("3", timeout=WAIT_MS)
        expect(page.locator("#connection")).to_have_text("live")
    assert site.errors == []


def test_in_chromium_the_live_feed_sends_others_to_sign_in_and_refuses_their_socket(
    site: LiveSite,
) -> None:
    user = UserFactory(username="lin", password=PASSWORD, is_staff=False)
    client = Client()
    client.force_login(user)  # signed in (the admin's sign-in page admits staff only)
    page = site.new_page()
    stranger = site.new_page()
    with site.explained(page, "live-refused"):
        page.context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site.base}]
        )
        page.goto(f"{site.base}/live/")
        assert page.url == f"{site.base}/admin/login/?next=/live/"
        assert "not authorized to access this page" in page.inner_text("body")
        assert refusal_code(page) == 4403
        page.screenshot(path=str(ARTIFACTS / "live-refused.png"), full_page=True)

        stranger.goto(f"{site.base}/live/")
        assert stranger.url == f"{site.base}/admin/login/?next=/live/"
        assert refusal_code(stranger) == 4401


def test_in_chromium_staff_without_the_permission_to_view_messages_get_403_and_a_refused_socket(
    site: LiveSite,
) -> None:
    UserFactory(username="kim", password=PASSWORD, is_staff=True)  # staff, no permission at all
    system_event_emit("bridge.up", "Telegram bridge @ops: up", session="ops")
    page = site.new_page()
    with site.explained(page, "live-no-permission"):
        page.goto(f"{site.base}/live/")
        page.fill("#id_username", "kim")
        page.fill("#id_password", PASSWORD)
        with page.expect_response(f"{site.base}/live/") as landing:
            page.click("input[type=submit]")
        assert landing.value.status == 403
        assert "Telegram bridge @ops" not in page.content()
        assert refusal_code(page) == 4403  # a real WebSocket through daphne, refused
        site.errors.clear()  # the 403 itself is reported in the console, as it should be


def test_in_chromium_the_live_feed_reconnects_after_a_restart_and_catches_up(
    site: LiveSite,
) -> None:
    from playwright.sync_api import expect

    a_watcher("grace")
    page = site.new_page()
    state = page.locator("#connection")
    with site.explained(page, "live-reconnect"):
        sign_in(page, site, "grace")
        expect(state).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#empty")).to_have_text("No messages yet.")
        expect(page.locator("#chart text.tick.latency")).to_have_count(0)  # no latency to scale
        with site.daphne_stopped():
            expect(state).to_have_text(
                re.compile(r"^disconnected · retrying in \d+ s$"), timeout=WAIT_MS
            )
            page.screenshot(path=str(ARTIFACTS / "live-offline.png"), full_page=True)
            system_event_emit("bridge.down", "Telegram bridge @ops: disconnected", session="ops")
        expect(state).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#system-events li .summary")).to_have_text(
            ["Telegram bridge @ops: disconnected"], timeout=WAIT_MS
        )
        expect(page.locator("#system-empty")).to_be_hidden()
    # While the server was away, each attempt to reconnect failed in the console, as it should.
    refused = re.compile(r"WebSocket connection to '\S+/ws/live/' failed")
    assert [error for error in site.errors if not refused.search(error)] == []
