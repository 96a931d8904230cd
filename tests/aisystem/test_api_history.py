"""``GET /api/v1/chats/{chat_id}/messages``: what a REST caller receives later.

Requests go through Django's ASGI request handling (``AsyncClient``); the pipeline and the
deferred job run for real against the fake Messages API on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone

from aisystem.models import (
    ApiToken,
    Chat,
    ChatType,
    CircuitBreaker,
    Direction,
    Event,
    Message,
    MessageStatus,
    Transport,
    Workspace,
)
from aisystem.services.tokens import api_token_create
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import OVERLOADED, FakeClaude, Scenario
from pipeline.fakeclaude.scenarios import Failure
from pipeline.replies import DEFERRED_REPLY, FAILED_REPLY
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)
POST_URL = "/api/v1/messages"


@pytest.fixture(autouse=True)
def claude_points_at_the_fake(fake_claude: FakeClaude, settings: Any) -> Iterator[None]:
    settings.CLAUDE = {
        **settings.CLAUDE,
        "MAX_ATTEMPTS": 2,
        "BACKOFF_BASE_SECONDS": 0.001,
        "BACKOFF_MAX_SECONDS": 0.01,
    }
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.fixture
def token() -> tuple[ApiToken, str]:
    return api_token_create(name="integration")


def auth(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


async def send(plaintext: str, text: str, *, chat_id: str = "c1", **headers: str) -> Any:
    body = json.dumps({"chat_id": chat_id, "user_id": "u1", "text": text})
    return await AsyncClient().post(
        POST_URL, data=body, content_type="application/json", headers={**auth(plaintext), **headers}
    )


async def history(plaintext: str | None, chat_id: str = "c1", **query: Any) -> Any:
    headers = auth(plaintext) if plaintext else {}
    return await AsyncClient().get(f"/api/v1/chats/{chat_id}/messages", query, headers=headers)


@sync_to_async
def stored_chat(token: ApiToken, chat_id: str, count: int) -> list[int]:
    """An API chat of ``token`` with ``count`` alternating messages; their ids, oldest first."""
    chat = Chat.objects.create(
        transport=Transport.API, external_id=f"{token.pk}:{chat_id}", chat_type=ChatType.API
    )
    rows = [
        Message(
            transport=Transport.API,
            chat=chat,
            transport_message_id=str(index),
            direction=Direction.INBOUND if index % 2 == 0 else Direction.OUTBOUND,
            status=MessageStatus.ANSWERED if index % 2 == 0 else MessageStatus.DELIVERED,
            text=f"message {index}",
        )
        for index in range(count)
    ]
    return [row.pk for row in Message.objects.bulk_create(rows)]


async def test_a_chat_lists_both_sides_oldest_first(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    first = (await send(token[1], "first question")).json()
    second = (await send(token[1], "second question")).json()

    response = await history(token[1])

    assert response.status_code == 200
    items = response.json()["items"]
    assert [(item["direction"], item["status"]) for item in items] == [
        ("in", "answered"),
        ("out", "delivered"),
        ("in", "answered"),
        ("out", "delivered"),
    ]
    assert [items[0]["id"], items[2]["id"]] == [first["message_id"], second["message_id"]]
    assert [items[1]["text"], items[3]["text"]] == [first["reply"], second["reply"]]
    assert items[0]["text"] == "first question"
    assert set(items[0]) == {"id", "direction", "text", "status", "created_at"}
    assert datetime.fromisoformat(items[0]["created_at"]).tzinfo is not None
    ids = [item["id"] for item in items]
    assert ids == sorted(ids)


async def test_another_tokens_chat_of_the_same_name_is_a_404(
    token: tuple[ApiToken, str],
) -> None:
    await send(token[1], "my secret plans")
    _, other = await sync_to_async(api_token_create)(name="other")

    theirs = await history(other)
    unknown = await history(token[1], chat_id="never-used")

    assert (theirs.status_code, unknown.status_code) == (404, 404)
    assert theirs.json() == {"detail": "No such chat for this token."}
    assert "secret" not in theirs.content.decode()


async def test_a_chat_id_cannot_reach_into_another_tokens_namespace(
    token: tuple[ApiToken, str],
) -> None:
    _, other = await sync_to_async(api_token_create)(name="other")
    await send(other, "theirs", chat_id="c1")

    # The other token's chat is stored as "<its id>:c1"; asked for by that name, it is
    # looked up in this token's namespace ("<my id>:<its id>:c1"), where nothing is.
    response = await history(token[1], chat_id=f"{token[0].pk + 1}:c1")

    assert response.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer ais_not-a-real-token"])
async def test_a_missing_or_unknown_token_is_401(
    token: tuple[ApiToken, str], header: str | None
) -> None:
    await send(token[1], "hello")
    headers = {"Authorization": header} if header else {}

    response = await AsyncClient().get("/api/v1/chats/c1/messages", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


async def test_pages_follow_after_and_limit(token: tuple[ApiToken, str]) -> None:
    ids = await stored_chat(token[0], "long", 230)

    default = (await history(token[1], "long")).json()["items"]
    page = (await history(token[1], "long", after=ids[49], limit=200)).json()["items"]
    last = (await history(token[1], "long", after=ids[-3], limit=10)).json()["items"]
    beyond = (await history(token[1], "long", after=ids[-1])).json()["items"]

    assert [item["id"] for item in default] == ids[:50]
    assert [item["id"] for item in page] == ids[50:250]
    assert [item["text"] for item in last] == ["message 228", "message 229"]
    assert beyond == []


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": -5},
        {"limit": "ten"},
        {"after": -1},
        {"after": "abc"},
        {"after": "1.5"},
        {"after": "9" * 40},
    ],
)
async def test_bad_paging_values_are_422_json(
    token: tuple[ApiToken, str], query: dict[str, Any]
) -> None:
    await stored_chat(token[0], "c1", 2)

    response = await history(token[1], **query)

    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/json")
    assert next(iter(query)) in json.dumps(response.json())


async def test_a_chat_id_with_a_slash_or_unicode_works(token: tuple[ApiToken, str]) -> None:
    await send(token[1], "hi", chat_id="team/alpha")
    await send(token[1], "hallo", chat_id="ünï")

    slashed = await history(token[1], chat_id="team/alpha")
    # AsyncClient hands Django a Latin-1 decoded path (a test-client quirk; ASGI servers pass
    # UTF-8), so the non-ASCII id goes through the WSGI client, which decodes it as servers do.
    get = sync_to_async(Client().get)
    accented = await get("/api/v1/chats/%C3%BCn%C3%AF/messages", headers=auth(token[1]))

    assert (slashed.status_code, accented.status_code) == (200, 200)
    assert slashed.json()["items"][0]["text"] == "hi"
    assert accented.json()["items"][0]["text"] == "hallo"


async def test_a_deferred_answer_appears_once_claude_is_back(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(OVERLOADED)

    posted = await send(token[1], "what is 2 + 2?")

    body = posted.json()
    assert (posted.status_code, body["status"], body["reply"]) == (200, "deferred", DEFERRED_REPLY)
    before = (await history(token[1])).json()["items"]
    assert [(item["direction"], item["status"]) for item in before] == [
        ("in", "deferred"),
        ("out", "delivered"),
    ]
    assert before[1]["text"] == DEFERRED_REPLY

    fake_claude.reset()  # Claude is back
    assert await sync_to_async(deferred_answer)() == 1
    assert await sync_to_async(deferred_answer)() == 0

    later = (await history(token[1], after=before[-1]["id"])).json()["items"]
    assert [(item["direction"], item["status"]) for item in later] == [("out", "delivered")]
    assert "what is 2 + 2?" in later[0]["text"]
    everything = (await history(token[1])).json()["items"]
    assert everything[0]["status"] == "answered"
    detail = await AsyncClient().get(f"{POST_URL}/{body['message_id']}", headers=auth(token[1]))
    assert detail.json()["reply"] == later[0]["text"]
    event = await Event.objects.filter(message_id=body["message_id"]).alatest("pk")
    assert (event.kind, event.data["deferred"]) == ("message.answered", True)
    assert event.data["text"] == later[0]["text"]  # an API chat's webhook carries the answer


async def test_a_message_deferred_by_the_open_breaker_is_answered_into_the_history(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    breaker = await CircuitBreaker.objects.acreate(
        service="anthropic",
        state=CircuitBreaker.State.OPEN,
        consecutive_failures=5,
        open_until=timezone.now() + timedelta(minutes=5),
    )

    posted = (await send(token[1], "are you there?")).json()

    assert posted["status"] == "deferred"
    assert fake_claude.requests == []  # the breaker refused without asking
    assert await sync_to_async(deferred_answer)() == 0  # still open: the job waits

    breaker.open_until = timezone.now() - timedelta(seconds=1)  # due for its probe
    await breaker.asave()
    assert await sync_to_async(deferred_answer)() == 1

    items = (await history(token[1])).json()["items"]
    assert [item["direction"] for item in items] == ["in", "out", "out"]
    assert "are you there?" in items[-1]["text"]


async def test_a_streamed_answer_cut_off_by_an_outage_resets_to_the_notice(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(
        Scenario(
            name="cut",
            reply_text="alpha beta gamma delta epsilon zeta",
            failure=Failure.DROP_CONNECTION,
            fail_after_deltas=3,
        )
    )

    response = await send(token[1], "stream please", Accept="text/event-stream")
    events = _parse_sse(b"".join([chunk async for chunk in response.streaming_content]).decode())

    names = [name for name, _ in events]
    assert "delta" in names  # part of the answer was shown
    resets = [data["text"] for name, data in events if name == "reset"]
    assert resets[-1] == DEFERRED_REPLY
    name, done = events[-1]
    assert (name, done["status"], done["reply"]) == ("done", "deferred", DEFERRED_REPLY)


async def test_a_request_claude_refuses_fails_at_once(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    # An empty model name is a 400 invalid_request_error: it can never succeed.
    await Workspace.objects.acreate(slug="broken", name="Broken", model="", is_default=True)

    body = (await send(token[1], "hello")).json()

    assert (body["status"], body["reply"]) == ("failed", FAILED_REPLY)
    assert len(fake_claude.requests) == 1
    items = (await history(token[1])).json()["items"]
    assert (items[0]["direction"], items[0]["status"]) == ("in", "failed")


async def test_the_openapi_document_describes_the_history() -> None:
    schema = (await AsyncClient().get("/api/openapi.json")).json()

    operation = schema["paths"]["/api/v1/chats/{chat_id}/messages"]["get"]
    assert operation["summary"]
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    assert parameters == {"chat_id", "after", "limit"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/ChatHistoryOut")
    item = schema["components"]["schemas"]["ChatMessageOut"]
    assert set(item["properties"]) == {"id", "direction", "text", "status", "created_at"}
    assert item["properties"]["direction"]["enum"] == ["in", "out"]
    assert {"401", "404"} <= set(operation["responses"])


def _parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events
