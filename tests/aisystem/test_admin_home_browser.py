"""The admin home as a newcomer sees it, in headless Chromium at a laptop's 1280 px: the
"System at a glance" summary spans the page beside the recent-actions column, its labels sit
on one line each, and the app list names the API models as "API credentials" / "API tokens".

A screenshot of the page is kept in the test artifacts (``admin-home-1280.png``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.browser import ARTIFACTS, CHROMIUM, chromium
from tests.conftest import require_service
from tests.factories import ExternalCallFactory, MessageFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd"
WIDTH = 1280

# Per label cell of the summary: its text, its height and the height of one line of its text.
LABEL_CELLS = """
() => Array.from(document.querySelectorAll("#system-overview th")).map((cell) => {
  const style = getComputedStyle(cell);
  const probe = document.createElement("span");
  probe.textContent = "X";
  probe.style.font = style.font;
  probe.style.lineHeight = style.lineHeight;
  probe.style.whiteSpace = "nowrap";
  cell.appendChild(probe);
  const line = probe.getBoundingClientRect().height;
  probe.remove();
  const box = cell.getBoundingClientRect();
  const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
  return {text: cell.textContent.trim(), height: box.height - padding, line: line};
})
"""
WIDTHS = """
() => ({
  overview: document.querySelector("#system-overview").getBoundingClientRect().width,
  window: document.documentElement.clientWidth,
})
"""


@pytest.fixture
def admin_page(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A superuser signed in at /admin/ in a 1280 px wide Chromium window."""
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    from playwright.sync_api import sync_playwright

    get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)
    MessageFactory()
    ExternalCallFactory(ok=False, error="overloaded_error: try again later")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("#system-overview")
            page.screenshot(path=str(ARTIFACTS / "admin-home-1280.png"), full_page=True)
            yield page
        finally:
            browser.close()


def test_at_1280_px_every_label_of_the_summary_fits_on_one_line(admin_page: Any) -> None:
    cells = admin_page.evaluate(LABEL_CELLS)

    labels = [cell["text"] for cell in cells]
    assert {"Messages", "Answered", "Rejected", "Failed", "Tokens", "Cost"} <= set(labels)
    wrapped = [cell for cell in cells if cell["height"] > cell["line"] * 1.5]
    assert wrapped == [], f"labels wrapping onto more than one line: {wrapped}"


def test_at_1280_px_the_summary_spans_the_main_column(admin_page: Any) -> None:
    widths = admin_page.evaluate(WIDTHS)

    # The main column: the window less the page's padding (2 x 40 px) and the recent-actions
    # column (300 px). Django's dashboard alone would keep it at 600 px.
    assert widths["overview"] >= (widths["window"] - 380) * 0.9, widths


def test_the_app_list_spells_api_in_capitals(admin_page: Any) -> None:
    app_list = admin_page.inner_text("#content-main")

    assert "API credentials" in app_list and "API tokens" in app_list
    assert "Api credentials" not in app_list and "Api tokens" not in app_list
