"""Every page we render, in headless Chromium under the real Content-Security-Policy: nothing
is blocked (no inline script, handler or style anywhere, the Django admin's pages and the API
docs included), and the policy does block what an injection would add."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    background,
    chromium,
    daphne_args,
    log_tail,
    process_env,
    watch_policy_violations,
)
from tests.conftest import require_service
from tests.factories import UserFactory
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd"


def admin_pages() -> list[str]:
    """The admin's home, and the list and add page of every model it shows."""
    pages = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        if model_admin.has_add_permission(_FakeSuperuserRequest()):
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    return pages


class _FakeSuperuserRequest:
    """Enough of a request for ``has_add_permission``: a superuser may add what can be added."""

    class user:
        is_active = is_staff = is_superuser = True

        @staticmethod
        def has_perm(permission: str, obj: Any = None) -> bool:
            return True


@dataclass
class Browsing:
    page: Any
    base: str
    violations: list[str]

    def open(self, path: str) -> Any:
        return self.page.goto(f"{self.base}{path}", wait_until="load")


@pytest.fixture
def signed_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[Browsing]:
    """A superuser signed in through the admin's form, in Chromium, on a fresh daphne, with
    the page's policy violations collected from the first page on."""
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    UserFactory(username="root", password=PASSWORD, is_staff=True, is_superuser=True)
    from playwright.sync_api import sync_playwright

    port = free_port()
    log = tmp_path / "daphne.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with background(daphne_args(port), process_env(0), log, port), sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page()
        browsing = Browsing(page, f"http://127.0.0.1:{port}", watch_policy_violations(page))
        try:
            browsing.open("/admin/login/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{browsing.base}/admin/")
            yield browsing
        except Exception as error:
            page.screenshot(path=str(ARTIFACTS / "csp-failed.png"), full_page=True)
            raise AssertionError(f"{error}\n--- daphne ---\n{log_tail(log)}") from error
        finally:
            browser.close()


def test_in_chromium_no_page_breaks_the_content_security_policy(signed_in: Browsing) -> None:
    page = signed_in.page
    for path in ["/chat/", "/live/", *admin_pages()]:
        response = signed_in.open(path)
        assert response is not None and response.status == 200, path
        page.wait_for_timeout(100)  # room for what the page's scripts do once loaded
    signed_in.open("/api/docs")
    page.wait_for_selector(".swagger-ui .info")  # Swagger UI ran, from our static files
    page.context.clear_cookies()
    signed_in.open("/accounts/login/")
    page.wait_for_selector("#id_username")
    assert signed_in.violations == [], "\n".join(signed_in.violations)


def test_in_chromium_an_injected_inline_script_is_blocked_and_reported(
    signed_in: Browsing,
) -> None:
    """The check above can fail: an inline script added to the chat page is refused."""
    page = signed_in.page
    signed_in.open("/chat/")
    ran = page.evaluate(
        """() => new Promise((resolve) => {
            window.injected = false;
            document.addEventListener("securitypolicyviolation", () => resolve(window.injected));
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.appendChild(script);
        })"""
    )
    assert ran is False
    page.wait_for_timeout(200)  # let the report reach the test
    reported = signed_in.violations
    assert any(v.startswith("script-src-elem blocked inline on /chat/") for v in reported), reported
