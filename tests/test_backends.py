"""The scaled mode's servers (PostgreSQL, Redis) and the browser (Chromium).

Each test skips on a laptop without the service, and fails in CI (AISYSTEM_REQUIRE_SERVICES).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from aisystem.models import ApiCredential
from aisystem.services.rate_limits import rate_limit_hit
from tests.conftest import require_service
from tests.helpers import manage, subprocess_database_url

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(
    os.environ.get("TEST_ARTIFACTS", Path(__file__).parent.parent / "var" / "test-artifacts")
)


def reachable(url: str, default_port: int) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
def test_rate_limits_hold_across_two_processes() -> None:
    """Two processes race for the same window; exactly `limit` hits are allowed in total."""
    script = (
        "from aisystem.services.rate_limits import rate_limit_hit;"
        "print(sum(rate_limit_hit(key='shared', limit=30, window_seconds=3600).allowed"
        " for _ in range(40)))"
    )
    env = {"DATABASE_URL": subprocess_database_url()}
    import subprocess
    import sys

    from tests.helpers import ROOT

    runs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "database is locked" not in err
    allowed = sum(int(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert allowed == 30
    assert not rate_limit_hit(key="shared", limit=30, window_seconds=3600).allowed


@pytest.mark.postgres
def test_the_scaled_mode_starts_on_postgresql() -> None:
    url = os.environ.get("TEST_POSTGRES_URL", "")
    require_service("PostgreSQL", bool(url) and reachable(url, 5432), "set TEST_POSTGRES_URL")
    result = manage("check", "--database", "default", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    shown = manage(
        "shell",
        "-c",
        "from django.db import connection; print(connection.vendor)",
        env={"DATABASE_URL": url},
    )
    assert shown.stdout.strip().splitlines()[-1] == "postgresql"


@pytest.mark.redis
async def test_redis_carries_the_cache_and_the_channel_layer_between_processes() -> None:
    url = os.environ.get("TEST_REDIS_URL", "")
    require_service("Redis", bool(url) and reachable(url, 6379), "set TEST_REDIS_URL")
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url])
    channel = await layer.new_channel()
    await layer.group_add("aisystem-test", channel)
    script = (
        "import asyncio; from channels.layers import get_channel_layer;"
        "from django.core.cache import cache; cache.set('aisystem-test', 'from-child', 60);"
        "asyncio.run(get_channel_layer().group_send('aisystem-test',"
        " {'type': 'test.event', 'text': 'hello'}))"
    )
    import asyncio

    result = await asyncio.to_thread(manage, "shell", "-c", script, env={"REDIS_URL": url})
    assert result.returncode == 0, result.stderr
    message = await asyncio.wait_for(layer.receive(channel), timeout=10)
    assert message == {"type": "test.event", "text": "hello"}
    await layer.group_discard("aisystem-test", channel)
    import redis

    assert redis.Redis.from_url(url).exists(":1:aisystem-test")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_sign_in_in_chromium_and_a_credential_added_there_is_encrypted(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    from django.contrib.auth import get_user_model
    from playwright.sync_api import sync_playwright

    get_user_model().objects.create_superuser("staff", "staff@example.test", "a-long-Passw0rd")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "a-long-Passw0rd")
        page.click("input[type=submit]")
        page.wait_for_selector("#system-overview")
        page.screenshot(path=str(ARTIFACTS / "admin-index.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/aisystem/apicredential/add/")
        page.fill("#id_label", "browser-key")
        page.fill("#id_secret", "sk-ant-from-the-browser-SECRET")
        page.click("input[name=_save]")
        page.wait_for_selector("text=was added successfully")
        html = page.content()
        browser.close()
    assert "sk-ant-from-the-browser-SECRET" not in html
    assert ApiCredential.objects.get(label="browser-key").secret == "sk-ant-from-the-browser-SECRET"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM aisystem_apicredential")
        assert "SECRET" not in cursor.fetchone()[0]
