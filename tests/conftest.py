"""Project-wide test setup.

* Only loopback is reachable: any other connection fails loudly.
* ``require_service`` skips a test whose server (Postgres, Redis, Chromium) is missing,
  except when AISYSTEM_REQUIRE_SERVICES or CI is set: then it fails.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from pipeline.fakeclaude import FakeClaude

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo

_LOCAL_NAMES = {"localhost", "testserver", "ip6-localhost"}


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise OSError(f"tests may only reach loopback; blocked a connection to {address!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise socket.gaierror(f"tests may only resolve loopback names; blocked {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test is always a slow one: ``-m "not slow"`` leaves it out too."""
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def services_required() -> bool:
    flag = os.environ.get("AISYSTEM_REQUIRE_SERVICES") or os.environ.get("CI") or ""
    return flag.strip().lower() in {"1", "true", "yes", "on"}


def require_service(name: str, available: bool, why: str) -> None:
    """Skip when ``available`` is False, or fail when CI says services must be there."""
    if available:
        return
    message = f"{name} is not available: {why}"
    if services_required():
        pytest.fail(f"{message} (AISYSTEM_REQUIRE_SERVICES/CI is set, so this is a failure)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _fast_test_settings(settings: Any) -> None:
    """Render admin pages without collectstatic; hash test passwords cheaply (PBKDF2 with a
    million rounds per created user would dominate the suite's run time)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
async def _close_the_sync_thread_connection(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Async tests reach the database through sync_to_async's worker thread, whose
    connection outlives the test; close it, or PostgreSQL cannot drop the test database."""
    yield
    if inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        from asgiref.sync import sync_to_async
        from django.db import connections

        await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _fresh_config_cache() -> Iterator[None]:
    """Each test starts with the pipeline reading rules, policies and workspaces afresh
    (a rolled-back or flushed database sends no signal to clear the per-process copy)."""
    from pipeline.config_cache import CONFIG

    CONFIG.clear()
    yield
    CONFIG.clear()


@pytest.fixture(autouse=True)
def _fresh_cache(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty the shared cache after each database test: it holds state that outlives a
    test's database rollback (the fallback key's cooldown, for one)."""
    yield
    if request.node.get_closest_marker("django_db") is None and "db" not in request.fixturenames:
        return
    from django.core.cache import cache

    django_db_blocker = request.getfixturevalue("django_db_blocker")
    with django_db_blocker.unblock():
        cache.clear()


@pytest.fixture
def staff_client(client: Any, admin_user: Any) -> Iterator[Any]:
    client.force_login(admin_user)
    yield client


PRIMARY_KEY = "sk-ant-test-primary"
SECONDARY_KEY = "sk-ant-test-secondary"


@pytest.fixture
def fake_claude() -> Iterator[FakeClaude]:
    """A running fake on an ephemeral loopback port that knows PRIMARY_KEY and SECONDARY_KEY.

    ``.base_url`` for the SDK, ``.set_scenario(...)``/``.define_scenario(...)`` to steer it,
    ``.requests``/``.last_request`` to see what it received.
    """
    with FakeClaude(api_keys=[PRIMARY_KEY, SECONDARY_KEY]) as fake:
        yield fake
