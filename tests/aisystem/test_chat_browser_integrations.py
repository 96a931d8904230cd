"""The browser chat's integration controls in headless Chromium: the Confirm button under an
answer that proposes a change, and the Connections panel.

Daphne runs in its own process on this test's database; fake Claude (its scenario calls the
real ``github_create_issue`` tool) and the GitHub fake run in this one, on loopback, and the
web process is pointed at them through the environment, as staff would configure it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from aisystem.chat.services import web_participant_ensure
from aisystem.models import AccessAction, AccessRule, IntegrationAccount, PendingAction
from pipeline.fakeclaude import FakeClaude, Scenario, ToolUseReply
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    background,
    chromium,
    daphne_args,
    log_tail,
    watch_policy_violations,
)
from tests.browser import process_env as browser_env
from tests.conftest import PRIMARY_KEY, require_service
from tests.factories import UserFactory
from tests.fakes.github import CLIENT_ID, CLIENT_SECRET, FakeGitHub
from tests.helpers import free_port
from tests.integrations import conftest as integration_fixtures
from tests.integrations.accounts import github_account

github = integration_fixtures.github  # the GitHub fake, configured as staff would

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd"
PROPOSES_AN_ISSUE = Scenario(
    name="proposes an issue",
    tool_use=ToolUseReply(
        name="github_create_issue",
        input={"repo": "grace/web", "title": "Fix login"},
        text_before="I'll file that.",
    ),
)


@pytest.fixture
def grace(github: FakeGitHub, settings: Any, monkeypatch: pytest.MonkeyPatch) -> IntegrationAccount:
    """A browser user (not staff) with GitHub connected as @grace, owning grace/web."""
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    # A hasher the web process knows (the suite's fast MD5 is for this process only).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    AccessRule.objects.create(action=AccessAction.ALLOW, transport="web")
    user = UserFactory(username="grace", first_name="Grace", password=PASSWORD)
    identity, chat = web_participant_ensure(user_id=user.pk)
    account = github_account(github, identity, chat)
    github.add_repo("grace", "web")
    return account


@contextmanager
def chat_page(tmp_path: Path, fake_claude: FakeClaude, github: FakeGitHub) -> Iterator[Any]:
    """Grace signed in on ``/chat/`` of a fresh daphne, its socket open."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = browser_env(0) | {
        "ANTHROPIC_BASE_URL": fake_claude.base_url,
        "ANTHROPIC_API_KEY": PRIMARY_KEY,
        "AISYSTEM_PUBLIC_URL": f"{base}/",
        "AISYSTEM_GITHUB_CLIENT_ID": CLIENT_ID,
        "AISYSTEM_GITHUB_CLIENT_SECRET": CLIENT_SECRET,
        "AISYSTEM_GITHUB_URL": github.base_url,
        "AISYSTEM_GITHUB_API_URL": github.api_url,
    }
    log = tmp_path / "daphne.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with background(daphne_args(port), env, log, port), sync_playwright() as playwright:
        browser = chromium(playwright)
        page = browser.new_page()
        violations = watch_policy_violations(page)
        page.goto(f"{base}/chat/")
        page.fill("#id_username", "grace")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#connection[data-state=online]")
        try:
            yield page
            assert violations == [], violations  # under the real Content-Security-Policy
        except Exception as error:
            page.screenshot(path=str(ARTIFACTS / "chat-integrations-failed.png"), full_page=True)
            raise AssertionError(f"{error}\n\ndaphne said:\n{log_tail(log)}") from error
        finally:
            browser.close()


def eventually(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.05)


def test_in_chromium_confirm_under_a_proposal_creates_the_issue_once(
    grace: IntegrationAccount, github: FakeGitHub, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    fake_claude.set_scenario(Scenario(name="says so", reply_text="I can file that for you."))
    fake_claude.set_scenario(PROPOSES_AN_ISSUE, times=1)
    with chat_page(tmp_path, fake_claude, github) as page:
        page.fill("#input", "File a bug about the login")
        page.keyboard.press("Enter")
        confirm = page.get_by_role("button", name="Confirm", exact=True)
        confirm.wait_for()
        question = page.locator(".message.assistant .bubble").last.inner_text()
        assert github.repo("grace", "web").issues == []  # nothing before the press

        confirm.dblclick()  # a double tap sends one decision: the first press disables it
        created = page.locator(".message.assistant", has_text="Created issue #1")
        created.wait_for()
        time.sleep(0.5)  # room for a second answer, should one come
        said = created.locator(".bubble").inner_text()
        disabled = [
            page.get_by_role("button", name=name, exact=True).is_disabled()
            for name in ("Confirm", "Cancel")
        ]
        created_count = created.count()
        page.screenshot(path=str(ARTIFACTS / "chat-confirm.png"), full_page=True)

    assert question.endswith("Create issue “Fix login” in grace/web? Reply /confirm or /cancel.")
    assert disabled == [True, True]
    assert created_count == 1
    assert said.endswith(f"{github.base_url}grace/web/issues/1")
    assert [issue.title for issue in github.repo("grace", "web").issues] == ["Fix login"]
    assert PendingAction.objects.get().status == "done"


def test_in_chromium_the_connections_panel_lists_the_account_and_disconnects_it(
    grace: IntegrationAccount, github: FakeGitHub, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    token = grace.extra_data["access_token"]
    with chat_page(tmp_path, fake_claude, github) as page:
        toggle = page.get_by_role("button", name="Connections", exact=True)
        toggle.click()
        panel = page.get_by_role("region", name="Connections")
        item = panel.locator(".connection-item[data-provider=github]")
        item.get_by_text("Connected as @grace").wait_for()
        listed = item.inner_text()
        expanded = toggle.get_attribute("aria-expanded")

        item.get_by_role("button", name="Disconnect GitHub").click()
        item.get_by_text("Not connected").wait_for()
        result = panel.get_by_role("status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "chat-connections.png"), full_page=True)

        with page.expect_popup() as opened:
            item.get_by_role("button", name="Connect GitHub").click()
        tab = opened.value
        tab.wait_for_load_state()
        connect_url, connect_page = tab.url, tab.content()

    assert "GitHub" in listed and expanded == "true"
    assert result == "Disconnected GitHub (@grace): access revoked at GitHub and removed here."
    assert not github.token_is_active(token)
    assert not IntegrationAccount.objects.filter(pk=grace.pk).exists()
    assert "/connect/" in connect_url  # a fresh one-time link, in a tab of its own
    assert "GitHub" in connect_page
