"""The providers on loopback (tests/fakes), wired into settings as staff would configure them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.github import CLIENT_ID as GITHUB_ID
from tests.fakes.github import CLIENT_SECRET as GITHUB_SECRET
from tests.fakes.github import FakeGitHub
from tests.fakes.google import CLIENT_ID as GOOGLE_ID
from tests.fakes.google import CLIENT_SECRET as GOOGLE_SECRET
from tests.fakes.google import FakeGoogle

PUBLIC_URL = "http://testserver/"


def _configure(settings: Any, name: str, values: dict[str, str]) -> None:
    integrations: dict[str, Any] = {k: dict(v) for k, v in settings.INTEGRATIONS.items()}
    integrations[name] |= values
    settings.INTEGRATIONS = integrations
    settings.AISYSTEM_PUBLIC_URL = PUBLIC_URL


def _github(settings: Any, **options: Any) -> Iterator[FakeGitHub]:
    with FakeGitHub(**options) as fake:
        values = {"CLIENT_ID": GITHUB_ID, "CLIENT_SECRET": GITHUB_SECRET}
        _configure(settings, "github", values | {"URL": fake.base_url, "API_URL": fake.api_url})
        yield fake


@pytest.fixture
def github(settings: Any) -> Iterator[FakeGitHub]:
    yield from _github(settings)


@pytest.fixture
def expiring_github(settings: Any) -> Iterator[FakeGitHub]:
    """GitHub with expiring, rotating user tokens (as GitHub Apps issue them)."""
    yield from _github(settings, expiring_tokens=True)


@pytest.fixture
def google(settings: Any) -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        _configure(
            settings,
            "google",
            {
                "CLIENT_ID": GOOGLE_ID,
                "CLIENT_SECRET": GOOGLE_SECRET,
                "OIDC_URL": fake.issuer,
                "CALENDAR_URL": fake.calendar_url,
                "REVOKE_URL": fake.revoke_url,
            },
        )
        yield fake
