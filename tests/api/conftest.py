"""Fixtures for the REST API's tests: a token, the pipeline pointed at the fake Messages API
on loopback, and a helper that posts a message the way a client does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.test import AsyncClient, override_settings

from aisystem.models import ApiToken
from aisystem.services.tokens import api_token_create
from pipeline.fakeclaude import FakeClaude
from tests.conftest import PRIMARY_KEY

URL = "/api/v1/messages"


@pytest.fixture(autouse=True)
def claude_points_at_the_fake(fake_claude: FakeClaude) -> Iterator[None]:
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.fixture
def token() -> tuple[ApiToken, str]:
    return api_token_create(name="integration")


async def a_token(name: str) -> str:
    return (await sync_to_async(api_token_create)(name=name))[1]


def auth(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


async def post(
    body: Any, plaintext: str, *, content_type: str = "application/json", **headers: str
) -> Any:
    """POST ``body`` (JSON-encoded unless it is already a string or bytes). The request runs
    in a ``ThreadSensitiveContext`` of its own, as Django's ASGI handler runs each request
    under daphne: the test client alone would run concurrent requests' sync middleware in one
    shared thread, one request after the other."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    async with ThreadSensitiveContext():
        return await AsyncClient().post(
            URL, data=data, content_type=content_type, headers={**auth(plaintext), **headers}
        )


def parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def read_stream(response: Any) -> list[tuple[str, dict[str, Any]]]:
    chunks = [chunk async for chunk in response.streaming_content]
    return parse_sse(b"".join(chunks).decode())
