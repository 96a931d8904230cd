"""The REST API: auth, every kind of bad input, the answer, streaming, health, OpenAPI.

Requests go through Django's ASGI request handling (``AsyncClient``); the pipeline runs for
real against the fake Messages API on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings

from aisystem.models import (
    AccessRule,
    ApiToken,
    Chat,
    Identity,
    Message,
    MessageStatus,
    RateLimitPolicy,
)
from aisystem.services.tokens import api_token_create, api_tokens_revoke
from pipeline.fakeclaude import UNAUTHORIZED, FakeClaude, Scenario
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/messages"


@pytest.fixture(autouse=True)
def claude_points_at_the_fake(fake_claude: FakeClaude) -> Iterator[None]:
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.fixture
def token() -> tuple[ApiToken, str]:
    return api_token_create(name="integration")


def auth(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


async def post(body: Any, plaintext: str | None, **headers: str) -> Any:
    client = AsyncClient()
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    extra = {**(auth(plaintext) if plaintext else {}), **headers}
    return await client.post(URL, data=data, content_type="application/json", headers=extra)


async def test_a_message_is_answered(token: tuple[ApiToken, str], fake_claude: FakeClaude) -> None:
    response = await post({"chat_id": "c1", "user_id": "u1", "text": "Hello API"}, token[1])

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "answered"
    assert "Hello API" in body["reply"]
    assert isinstance(body["message_id"], int)
    assert {"gate", "agent", "total"} <= set(body["timings_ms"])
    identity = await Identity.objects.aget(transport="api")
    assert identity.external_id == f"{token[0].pk}:u1"


async def test_the_token_rule_covers_every_user_and_chat(token: tuple[ApiToken, str]) -> None:
    for chat, user in [("a", "1"), ("b", "2"), ("c", "3")]:
        response = await post({"chat_id": chat, "user_id": user, "text": "hi"}, token[1])
        assert response.json()["status"] == "answered"

    assert await AccessRule.objects.acount() == 1


async def test_rate_limits_apply_per_end_user(token: tuple[ApiToken, str]) -> None:
    await RateLimitPolicy.objects.acreate(
        name="guests", role="guest", messages_per_window=1, window_seconds=3600
    )

    first = await post({"chat_id": "c", "user_id": "alice", "text": "one"}, token[1])
    second = await post({"chat_id": "c", "user_id": "alice", "text": "two"}, token[1])
    other = await post({"chat_id": "c", "user_id": "bob", "text": "one"}, token[1])

    assert first.json()["status"] == "answered"
    assert second.json()["status"] == "rejected"
    assert second.json()["reason"] == "rate_limited"
    assert other.json()["status"] == "answered"


async def test_two_tokens_never_share_a_conversation() -> None:
    _, first = await sync_to_async(api_token_create)(name="one")
    _, second = await sync_to_async(api_token_create)(name="two")

    await post({"chat_id": "same", "user_id": "u", "text": "hi"}, first)
    await post({"chat_id": "same", "user_id": "u", "text": "hi"}, second)

    assert await Chat.objects.filter(transport="api").acount() == 2


@pytest.mark.parametrize(
    "header",
    [None, "Bearer ais_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer sk-ant-xyz"],
)
async def test_a_missing_or_unknown_token_is_401(header: str | None) -> None:
    client = AsyncClient()
    headers = {"Authorization": header} if header else {}
    response = await client.post(
        URL,
        data=json.dumps({"chat_id": "c", "user_id": "u", "text": "hi"}),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    assert await Message.objects.acount() == 0


async def test_a_revoked_token_is_401(token: tuple[ApiToken, str]) -> None:
    await sync_to_async(api_tokens_revoke)(tokens=[token[0]])

    response = await post({"chat_id": "c", "user_id": "u", "text": "hi"}, token[1])

    assert response.status_code == 401


async def test_unreadable_json_is_400(token: tuple[ApiToken, str]) -> None:
    response = await post('{"chat_id": "c", "user_id": ', token[1])

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "text": "hi"}, "chat_id"),
        ({"chat_id": "c", "text": "hi"}, "user_id"),
        ({"chat_id": "c", "user_id": "u"}, "text"),
        ({"chat_id": "c", "user_id": "u", "text": ""}, "text"),
        ({"chat_id": "c", "user_id": "u", "text": "   "}, "text"),
        ({"chat_id": "c", "user_id": "u", "text": "bell\x07"}, "text"),
        ({"chat_id": "c", "user_id": "u", "text": "nul\x00byte"}, "text"),
        ({"chat_id": "c\n", "user_id": "u", "text": "hi"}, "chat_id"),
        ({"chat_id": "c", "user_id": "x" * 101, "text": "hi"}, "user_id"),
        ({"chat_id": 5, "user_id": "u", "text": "hi"}, "chat_id"),
        ({"chat_id": "c", "user_id": "u", "text": ["a"]}, "text"),
        (["not", "an", "object"], "body"),
    ],
)
async def test_invalid_fields_are_422_and_name_the_field(
    token: tuple[ApiToken, str], body: Any, field: str
) -> None:
    response = await post(body, token[1])

    assert response.status_code == 422
    assert field in json.dumps(response.json())
    assert await Message.objects.acount() == 0


async def test_a_megabyte_of_text_is_413(token: tuple[ApiToken, str]) -> None:
    response = await post({"chat_id": "c", "user_id": "u", "text": "a" * 1_000_000}, token[1])

    assert response.status_code == 413
    assert "too long" in response.json()["detail"]


async def test_a_body_over_the_upload_limit_is_413(token: tuple[ApiToken, str]) -> None:
    response = await post({"chat_id": "c", "user_id": "u", "text": "a" * 3_000_000}, token[1])

    assert response.status_code == 413


async def test_odd_unicode_is_accepted(token: tuple[ApiToken, str]) -> None:
    text = "emoji 👩🏽‍💻, RTL שלום, combining é, zero-width\u200bjoiner"

    response = await post({"chat_id": "ünï", "user_id": "名前", "text": text}, token[1])

    assert response.status_code == 200
    assert response.json()["status"] == "answered"


async def test_claude_being_down_answers_deferred(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(UNAUTHORIZED)

    response = await post({"chat_id": "c", "user_id": "u", "text": "hi"}, token[1])

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "deferred"
    assert "temporarily unavailable" in body["reply"]
    stored = await Message.objects.aget(pk=body["message_id"])
    assert stored.status == MessageStatus.DEFERRED


async def test_the_reply_streams_as_server_sent_events(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(
        Scenario(name="words", reply_text="alpha beta gamma delta epsilon", tokens_per_second=100)
    )

    response = await post(
        {"chat_id": "c", "user_id": "u", "text": "stream please"},
        token[1],
        Accept="text/event-stream",
    )
    chunks = [chunk async for chunk in response.streaming_content]
    events = _parse_sse(b"".join(chunks).decode())

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) >= 2
    assert "".join(deltas) == "alpha beta gamma delta epsilon"
    name, done = events[-1]
    assert name == "done" and done["status"] == "answered"
    assert done["reply"] == "alpha beta gamma delta epsilon"


def _parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_a_stored_message_can_be_fetched_by_its_token_only(
    token: tuple[ApiToken, str],
) -> None:
    sent = (await post({"chat_id": "c", "user_id": "u", "text": "remember me"}, token[1])).json()
    _, other = await sync_to_async(api_token_create)(name="other")
    client = AsyncClient()

    mine = await client.get(f"{URL}/{sent['message_id']}", headers=auth(token[1]))
    theirs = await client.get(f"{URL}/{sent['message_id']}", headers=auth(other))

    assert mine.status_code == 200
    assert mine.json()["status"] == "answered"
    assert mine.json()["reply"] == sent["reply"]
    assert theirs.status_code == 404


async def test_health_reports_each_component(token: tuple[ApiToken, str]) -> None:
    response = await AsyncClient().get("/api/v1/health")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "database", "channel_layer", "claude", "credentials", "bridge"}
    assert body["database"]["ok"] and body["channel_layer"]["ok"]
    assert body["claude"]["detail"] == "circuit breaker closed"
    assert "ANTHROPIC_API_KEY set" in body["credentials"]["detail"]
    assert PRIMARY_KEY not in response.content.decode()


async def test_health_is_degraded_without_any_key() -> None:
    with override_settings(ANTHROPIC_API_KEY=""):
        response = await AsyncClient().get("/api/v1/health")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["credentials"]["ok"] is False


async def test_the_openapi_document_and_docs_are_served() -> None:
    client = AsyncClient()

    schema = (await client.get("/api/openapi.json")).json()
    docs = await client.get("/api/docs")

    assert "/api/v1/messages" in schema["paths"]
    assert "/api/v1/health" in schema["paths"]
    assert docs.status_code == 200
