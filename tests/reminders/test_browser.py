"""In headless Chromium: a reminder set in the browser chat appears in the open page when it
is due. Daphne runs in its own process on this test's database; the reminder job runs here
with an advanced clock, as the worker would run it at the due time."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aisystem.chat.services import web_participant_ensure
from aisystem.models import AccessAction, AccessRule, OutboxItem, Reminder
from pipeline.fakeclaude import FakeClaude
from pipeline.reminders.delivery import reminders_deliver_due
from tests.browser import ARTIFACTS, CHROMIUM, background, chromium, daphne_args, log_tail
from tests.browser import process_env as browser_env
from tests.conftest import PRIMARY_KEY, require_service
from tests.factories import UserFactory
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd"


def test_in_chromium_a_due_reminder_appears_in_the_open_chat(
    fake_claude: FakeClaude, tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    AccessRule.objects.create(action=AccessAction.ALLOW, transport="web")
    user = UserFactory(username="ada", first_name="Ada", password=PASSWORD)
    web_participant_ensure(user_id=user.pk)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = browser_env(0) | {
        "ANTHROPIC_BASE_URL": fake_claude.base_url,
        "ANTHROPIC_API_KEY": PRIMARY_KEY,
    }
    log = tmp_path / "daphne.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with background(daphne_args(port), env, log, port), sync_playwright() as playwright:
        browser = chromium(playwright)
        page = browser.new_page()
        try:
            page.goto(f"{base}/chat/")
            page.fill("#id_username", "ada")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#connection[data-state=online]")
            page.fill("#input", "/remind in 10m stretch your legs")
            page.keyboard.press("Enter")
            page.locator(".message.assistant", has_text="I'll remind you").wait_for()

            reminder = Reminder.objects.get()
            assert reminders_deliver_due(now=reminder.due_at + timedelta(seconds=5)) == 1
            arrived = page.locator(".message.assistant", has_text="⏰ Reminder: stretch your legs")
            arrived.wait_for(timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "chat-reminder.png"), full_page=True)
            shown = arrived.count()
        except Exception as error:
            page.screenshot(path=str(ARTIFACTS / "chat-reminder-failed.png"), full_page=True)
            raise AssertionError(f"{error}\n\ndaphne said:\n{log_tail(log)}") from error
        finally:
            browser.close()

    assert shown == 1
    item = OutboxItem.objects.get()
    assert item.status == OutboxItem.Status.SENT and item.sent_at is not None
