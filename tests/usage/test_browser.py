"""A person's data in the browser chat, in headless Chromium: ``/export`` offers the JSON as a
download under its reply; ``/forget`` asks with Confirm and Cancel, and Confirm forgets.

Daphne runs in its own process on this test's database; fake Claude runs in this one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from aisystem.chat.services import web_participant_ensure
from aisystem.models import AccessAction, AccessRule, Identity, Message, PendingAction
from pipeline.fakeclaude import FakeClaude
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
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd"


@pytest.fixture
def grace(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Identity:
    """A browser user (not staff) allowed to use the chat."""
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    AccessRule.objects.create(action=AccessAction.ALLOW, transport="web")
    user = UserFactory(username="grace", first_name="Grace", password=PASSWORD)
    identity, _ = web_participant_ensure(user_id=user.pk)
    return identity


@contextmanager
def chat_page(tmp_path: Path, fake_claude: FakeClaude) -> Iterator[tuple[Any, list[str]]]:
    """Grace signed in on ``/chat/`` of a fresh daphne, its socket open; and the page's
    Content-Security-Policy violations."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = browser_env(0) | {
        "ANTHROPIC_BASE_URL": fake_claude.base_url,
        "ANTHROPIC_API_KEY": PRIMARY_KEY,
        "AISYSTEM_PUBLIC_URL": f"http://127.0.0.1:{port}/",
    }
    log = tmp_path / "daphne.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with background(daphne_args(port), env, log, port), sync_playwright() as playwright:
        browser = chromium(playwright)
        page = browser.new_page(accept_downloads=True)
        violations = watch_policy_violations(page)
        page.goto(f"http://127.0.0.1:{port}/chat/")
        page.fill("#id_username", "grace")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#connection[data-state=online]")
        try:
            yield page, violations
        except Exception as error:
            page.screenshot(path=str(ARTIFACTS / "chat-your-data-failed.png"), full_page=True)
            raise AssertionError(f"{error}\n\ndaphne said:\n{log_tail(log)}") from error
        finally:
            browser.close()


def say(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.keyboard.press("Enter")


def test_in_chromium_export_offers_the_json_as_a_download(
    grace: Identity, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    with chat_page(tmp_path, fake_claude) as (page, violations):
        say(page, "I like green tea")
        page.locator(".message.assistant", has_text="I like green tea").wait_for()
        say(page, "/export")
        link = page.locator(".message.assistant a.attachment")
        link.wait_for()
        label = link.inner_text()
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        said = page.locator(".message.assistant .bubble").last.inner_text()

    data = json.loads(saved.read_text())
    assert saved.name.startswith("aisystem-data-") and saved.name.endswith(".json")
    assert label.startswith(f"Download {saved.name} (")
    assert said.startswith("Here is everything I keep about you")
    assert data["identity"]["external_id"] == grace.external_id
    assert ("in", "I like green tea") in [(m["direction"], m["text"]) for m in data["messages"]]
    assert violations == []


def test_in_chromium_forget_asks_and_confirm_forgets(
    grace: Identity, fake_claude: FakeClaude, tmp_path: Path
) -> None:
    with chat_page(tmp_path, fake_claude) as (page, _):
        say(page, "my locker code is 1234")
        page.locator(".message.assistant", has_text="1234").wait_for()
        say(page, "/forget")
        confirm = page.get_by_role("button", name="Confirm", exact=True)
        confirm.wait_for()
        confirm.click()
        page.locator(".message.assistant", has_text="Done: I deleted").wait_for()
        page.reload()
        page.wait_for_selector("#connection[data-state=online]")
        say(page, "hello again")
        page.locator(".message.assistant", has_text="hello again").wait_for()
        shown = page.locator("#messages").inner_text()

    assert "1234" not in shown  # the page's history is a fresh conversation's
    assert "hello again" in shown
    assert not Message.objects.filter(text__contains="1234").exists()
    assert PendingAction.objects.get().status == "done"
