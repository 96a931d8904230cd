"""The browser chat: ``/ws/chat/`` with the real pipeline against the fake Messages API, the
``/chat/`` page, and the plain-value parts (transport, frame parsing, the token bucket).

Sockets go through ``AuthMiddlewareStack`` with a real session cookie, as in production.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import AsyncClient, override_settings

from aisystem.chat import consumers
from aisystem.chat.consumers import chat_workers_settle
from aisystem.chat.protocol import (
    CLOSE_FRAME_TOO_LARGE,
    CLOSE_UNAUTHENTICATED,
    ClientMessage,
    FrameError,
    TokenBucket,
    frame_limit_bytes,
    frame_parse,
)
from aisystem.chat.routing import websocket_urlpatterns
from aisystem.chat.transport import WebSocketTransport
from aisystem.models import (
    AccessAction,
    AccessRule,
    Chat,
    Conversation,
    Direction,
    Identity,
    Message,
    MessageStatus,
    OutboxItem,
    Workspace,
)
from aisystem.services.accounts import superuser_ensure
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import UNAUTHORIZED, FakeClaude, Scenario
from pipeline.security_gate import NOT_AVAILABLE
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    background,
    chromium,
    daphne_args,
    fakeclaude_args,
    log_tail,
    process_env,
    watch_policy_violations,
)
from tests.conftest import PRIMARY_KEY, require_service
from tests.factories import UserFactory
from tests.helpers import free_port

APPLICATION = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
WORDS = "alpha beta gamma delta epsilon zeta"


@pytest.fixture(autouse=True)
def claude_points_at_the_fake(fake_claude: FakeClaude) -> Iterator[None]:
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.fixture
def user() -> Any:
    return UserFactory(username="ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def web_allowed() -> AccessRule:
    return AccessRule.objects.create(
        action=AccessAction.ALLOW, transport="web", description="signed-in browser users"
    )


async def session_cookie(user: Any) -> bytes:
    client = AsyncClient()
    await client.aforce_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


@asynccontextmanager
async def chat_socket(user: Any) -> AsyncIterator[WebsocketCommunicator]:
    """A connected page of ``user``, past its ``history`` and ``status`` events."""
    headers = [(b"cookie", await session_cookie(user))]
    communicator = WebsocketCommunicator(APPLICATION, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    try:
        yield communicator
    finally:
        await communicator.disconnect()
        await chat_workers_settle()


async def opening(communicator: WebsocketCommunicator) -> tuple[dict[str, Any], dict[str, Any]]:
    history = await communicator.receive_json_from(timeout=5)
    status = await communicator.receive_json_from(timeout=5)
    assert (history["type"], status["type"]) == ("history", "status")
    return history, status


async def send(communicator: WebsocketCommunicator, text: str, client_id: str) -> None:
    await communicator.send_json_to({"type": "message", "text": text, "id": client_id})


async def events_until_reply(
    communicator: WebsocketCommunicator, client_id: str
) -> list[dict[str, Any]]:
    """Every event up to and including the ``reply`` (or ``error``) for ``client_id``."""
    events = []
    while True:
        event = await communicator.receive_json_from(timeout=10)
        events.append(event)
        if event["type"] in ("reply", "error") and event.get("id") == client_id:
            return events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


# --- The socket, end to end ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_signed_in_user_sees_the_reply_stream_in(
    user: Any, web_allowed: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(Scenario(name="words", reply_text=WORDS, tokens_per_second=25))

    async with chat_socket(user) as page:
        history, status = await opening(page)
        await send(page, "Tell me the Greek letters", "m1")
        events = await events_until_reply(page, "m1")

    assert history["messages"] == []
    assert status["workspace"]["slug"] == "assistant"
    assert events[0] == {"type": "ack", "id": "m1"}
    deltas = [event["text"] for event in of_type(events, "delta")]
    assert len(deltas) >= 2
    assert "".join(deltas) == WORDS
    assert events[-1] == {
        "type": "reply",
        "id": "m1",
        "text": WORDS,
        "status": "answered",
        "reason": "",
    }
    stored = await Message.objects.aget(direction=Direction.INBOUND)
    assert (stored.transport, stored.transport_message_id, stored.status) == (
        "web",
        "m1",
        MessageStatus.ANSWERED,
    )


@pytest.mark.django_db(transaction=True)
async def test_the_web_identity_is_linked_to_the_django_user(
    user: Any, web_allowed: AccessRule
) -> None:
    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "hello", "m1")
        await events_until_reply(page, "m1")

    identity = await Identity.objects.aget(transport="web")
    assert (identity.external_id, identity.user_id) == (str(user.pk), user.pk)
    assert (identity.username, identity.display_name) == ("ada", "Ada Lovelace")
    chat = await Chat.objects.aget(transport="web")
    assert (chat.external_id, chat.chat_type) == (f"user-{user.pk}", "web")


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_socket_is_closed_with_4401() -> None:
    communicator = WebsocketCommunicator(APPLICATION, "/ws/chat/")
    connected, _ = await communicator.connect()

    closed = await communicator.receive_output(timeout=5)

    assert connected  # accepted first, so a browser sees the code
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    await communicator.wait()


@pytest.mark.parametrize("how", ["signed out elsewhere", "deactivated by staff"])
@pytest.mark.django_db(transaction=True)
async def test_an_open_page_stops_chatting_once_the_user_is_signed_out(
    user: Any, web_allowed: AccessRule, how: str
) -> None:
    async with chat_socket(user) as page:
        await opening(page)
        if how == "signed out elsewhere":
            await Session.objects.all().adelete()
        else:
            await type(user).objects.filter(pk=user.pk).aupdate(is_active=False)
        await send(page, "still me?", "m1")
        events = await events_until_reply(page, "m1")
        closed = await page.receive_output(timeout=5)

    assert events[-1] == {"type": "error", "id": "m1", "message": consumers.SIGNED_OUT}
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    assert await Message.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
async def test_without_an_allow_rule_the_gate_refuses_in_plain_words(
    user: Any, fake_claude: FakeClaude
) -> None:
    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "let me in", "m1")
        events = await events_until_reply(page, "m1")

    reply = events[-1]
    assert (reply["status"], reply["reason"]) == ("rejected", "no_matching_rule")
    assert reply["text"] == NOT_AVAILABLE
    assert fake_claude.requests == []


@pytest.mark.django_db(transaction=True)
async def test_the_owner_made_by_ensure_superuser_is_answered_and_nobody_else(
    fake_claude: FakeClaude,
) -> None:
    fake_claude.set_scenario(Scenario(name="words", reply_text=WORDS))
    await sync_to_async(superuser_ensure)(username="owner", email=None, password="x-Passw0rd-1")
    owner = await get_user_model().objects.aget(username="owner")
    other = await sync_to_async(UserFactory)(username="guest")

    async with chat_socket(owner) as page:
        await opening(page)
        await send(page, "hello", "m1")
        answered = (await events_until_reply(page, "m1"))[-1]
    async with chat_socket(other) as page:
        await opening(page)
        await send(page, "hello", "m2")
        refused = (await events_until_reply(page, "m2"))[-1]

    assert (answered["status"], answered["text"]) == ("answered", WORDS)
    assert (refused["status"], refused["reason"]) == ("rejected", "no_matching_rule")


@pytest.mark.django_db(transaction=True)
async def test_new_ends_the_conversation_for_every_page_of_the_user(
    user: Any, web_allowed: AccessRule
) -> None:
    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "remember the number 7", "m1")
        await events_until_reply(page, "m1")
        await send(page, "/new", "m2")
        events = await events_until_reply(page, "m2")

    assert events[-1]["status"] == "answered"
    assert "new conversation" in events[-1]["text"].lower()
    assert await Conversation.objects.filter(ended_at__isnull=True).acount() == 0
    async with chat_socket(user) as other_tab:
        history, _ = await opening(other_tab)
    assert history["messages"] == []


@pytest.mark.django_db(transaction=True)
async def test_the_page_is_told_the_workspace_after_switching(
    user: Any, web_allowed: AccessRule
) -> None:
    await Workspace.objects.acreate(slug="research", name="Research")

    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "/workspace research", "m1")
        events = await events_until_reply(page, "m1")
        status = await page.receive_json_from(timeout=5)

    assert "Research" in events[-1]["text"]
    assert status == {"type": "status", "workspace": {"slug": "research", "name": "Research"}}


@pytest.mark.django_db(transaction=True)
async def test_the_history_is_shown_again_after_a_reconnect(
    user: Any, web_allowed: AccessRule
) -> None:
    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "first words", "m1")
        await events_until_reply(page, "m1")

    async with chat_socket(user) as page:
        history, _ = await opening(page)

    assert [(m["role"], m["text"]) for m in history["messages"]] == [
        ("user", "first words"),
        ("assistant", "You said: first words"),  # the fake echoes
    ]


@pytest.mark.django_db(transaction=True)
async def test_an_answer_is_finished_and_stored_after_the_page_closes(
    user: Any, web_allowed: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(Scenario(name="slow", reply_text=WORDS, time_to_first_token=0.3))
    headers = [(b"cookie", await session_cookie(user))]
    page = WebsocketCommunicator(APPLICATION, "/ws/chat/", headers=headers)
    await page.connect()
    await opening(page)
    await send(page, "answer even if I leave", "m1")
    assert await page.receive_json_from(timeout=5) == {"type": "ack", "id": "m1"}

    await page.disconnect()
    await chat_workers_settle()

    inbound = await Message.objects.aget(direction=Direction.INBOUND)
    reply = await Message.objects.aget(direction=Direction.OUTBOUND)
    assert inbound.status == MessageStatus.ANSWERED
    assert reply.text == WORDS


@pytest.mark.django_db(transaction=True)
async def test_messages_of_one_page_are_answered_in_order(
    user: Any, web_allowed: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(Scenario(name="paced", tokens_per_second=200))

    async with chat_socket(user) as page:
        await opening(page)
        for number in range(1, 4):
            await send(page, f"message {number}", f"m{number}")
        events = await events_until_reply(page, "m3")

    replies = of_type(events, "reply")
    assert [(r["id"], r["text"]) for r in replies] == [
        ("m1", "You said: message 1"),
        ("m2", "You said: message 2"),
        ("m3", "You said: message 3"),
    ]
    assert [e["id"] for e in of_type(events, "ack")] == ["m1", "m2", "m3"]


@pytest.mark.django_db(transaction=True)
async def test_sending_too_fast_is_refused_per_connection(
    user: Any, web_allowed: AccessRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "RATE_CAPACITY", 3)

    async with chat_socket(user) as page:
        await opening(page)
        for number in range(1, 5):
            await send(page, f"message {number}", f"m{number}")
        events = await events_until_reply(page, "m4")
        rest = await events_until_reply(page, "m3")

    assert events[-1]["type"] == "error"
    assert events[-1]["message"].startswith("Slow down")
    assert [r["id"] for r in of_type(events + rest, "reply")] == ["m1", "m2", "m3"]
    assert await Message.objects.filter(direction=Direction.INBOUND).acount() == 3


@pytest.mark.django_db(transaction=True)
async def test_an_oversized_frame_closes_the_socket_with_4413(user: Any) -> None:
    limit = frame_limit_bytes(settings.PIPELINE["MAX_INPUT_CHARS"])

    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "x" * limit, "big")
        error = await page.receive_json_from(timeout=5)
        closed = await page.receive_output(timeout=5)

    assert error["type"] == "error" and "too large" in error["message"]
    assert closed == {"type": "websocket.close", "code": CLOSE_FRAME_TOO_LARGE}
    assert await Message.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
async def test_bad_frames_get_an_error_and_the_page_keeps_working(
    user: Any, web_allowed: AccessRule
) -> None:
    async with chat_socket(user) as page:
        await opening(page)
        await page.send_to(text_data="{not json")
        invalid = await page.receive_json_from(timeout=5)
        await page.send_json_to({"type": "dance", "id": "d1"})
        unknown = await page.receive_json_from(timeout=5)
        await page.send_to(bytes_data=b"\x00\x01")
        binary = await page.receive_json_from(timeout=5)
        await send(page, "   ", "blank")
        blank = await page.receive_json_from(timeout=5)
        await send(page, "still there?", "m1")
        events = await events_until_reply(page, "m1")

    assert invalid == {"type": "error", "message": "That was not valid JSON."}
    assert unknown["id"] == "d1" and "Unknown message type" in unknown["message"]
    assert binary["type"] == "error" and "id" not in binary
    assert blank["id"] == "blank" and blank["type"] == "error"
    assert events[-1]["status"] == "answered"


@pytest.mark.django_db(transaction=True)
async def test_a_deferred_answer_waits_in_the_outbox_until_a_page_is_open(
    user: Any, web_allowed: AccessRule, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(UNAUTHORIZED, times=1)
    async with chat_socket(user) as page:
        await opening(page)
        await send(page, "are you there?", "m1")
        deferred = (await events_until_reply(page, "m1"))[-1]
    await sync_to_async(cache.clear)()  # the fallback key's "invalid" mark: staff fixed it

    assert await sync_to_async(deferred_answer)() == 1
    async with chat_socket(user) as page:
        history, _ = await opening(page)
        delivered = await page.receive_json_from(timeout=5)

    assert (deferred["status"], deferred["reason"]) == ("deferred", "claude_unavailable")
    assert "temporarily unavailable" in deferred["text"]
    assert "You said: are you there?" not in [m["text"] for m in history["messages"]]
    assert delivered == {
        "type": "reply",
        "id": "m1",
        "text": "You said: are you there?",
        "status": "answered",
        "reason": "deferred",
    }
    item = await OutboxItem.objects.aget()
    assert item.status == OutboxItem.Status.SENT
    reply = await Message.objects.aget(
        direction=Direction.OUTBOUND, text="You said: are you there?"
    )
    assert reply.status == MessageStatus.DELIVERED


@pytest.mark.django_db(transaction=True)
async def test_the_project_asgi_app_serves_the_chat_to_its_own_origin_only(user: Any) -> None:
    from aisystem.asgi import application

    cookie = (b"cookie", await session_cookie(user))
    own = WebsocketCommunicator(
        application, "/ws/chat/", headers=[cookie, (b"origin", b"http://127.0.0.1:8000")]
    )
    foreign = WebsocketCommunicator(
        application, "/ws/chat/", headers=[cookie, (b"origin", b"https://evil.example")]
    )

    own_connected, _ = await own.connect()
    history, status = await opening(own)
    await own.disconnect()
    foreign_connected, _ = await foreign.connect()
    await chat_workers_settle()

    assert own_connected and history["messages"] == [] and status["workspace"]
    assert not foreign_connected


# --- The page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_sends_anonymous_visitors_to_sign_in(client: Any) -> None:
    response = client.get("/chat/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/chat/"


@pytest.mark.django_db
def test_the_page_renders_for_a_signed_in_user(client: Any, user: Any) -> None:
    client.force_login(user)

    response = client.get("/chat/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ws-path="/ws/chat/"' in html
    assert "chat/chat.js" in html and "chat/markdown.js" in html
    assert "Ada Lovelace" in html
    assert "onclick" not in html and "<script>" not in html  # no inline code


# --- Plain values ----------------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    async def __call__(self, event: dict[str, object]) -> None:
        self.events.append(event)


async def test_the_transport_sends_what_changed_and_resets_when_the_text_shrinks() -> None:
    sink = _Sink()
    transport = WebSocketTransport(sink, client_id="c1")

    message_id = await transport.send_text("chat", "Hello")
    await transport.edit_text("chat", message_id, "Hello, world")
    await transport.edit_text("chat", message_id, "Hello, world")  # no change: nothing sent
    await transport.edit_text("chat", message_id, "Hi")
    await transport.send_typing("chat")

    assert sink.events == [
        {"type": "delta", "id": "c1", "text": "Hello"},
        {"type": "delta", "id": "c1", "text": ", world"},
        {"type": "reset", "id": "c1", "text": "Hi"},
        {"type": "typing", "id": "c1"},
    ]


async def test_a_second_message_of_one_reply_continues_the_same_bubble() -> None:
    sink = _Sink()
    transport = WebSocketTransport(sink, client_id="c1")

    await transport.send_text("chat", "Part one")
    await transport.send_text("chat", "Part two")

    assert transport.text == "Part one\n\nPart two"
    assert sink.events[-1] == {"type": "delta", "id": "c1", "text": "\n\nPart two"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type": "message", "text": "hi", "id": "a-1"}', ClientMessage("hi", "a-1")),
        ("[1, 2]", FrameError('Send a JSON object such as {"type": "message", "text": "Hello"}.')),
        ('{"type": "message", "text": 5, "id": "x"}', FrameError("A message needs a text.", "x")),
        (
            '{"type": "message", "text": "\\n ", "id": "x"}',
            FrameError("Type something first.", "x"),
        ),
        (
            '{"type": "message", "text": "hi", "id": "<script>"}',
            FrameError("A message id must be 1-64 letters, digits or - _ . :"),
        ),
        ('{"type": "ping"}', FrameError("Unknown message type: 'ping'.")),
    ],
)
def test_frames_are_parsed_or_refused_in_plain_words(
    raw: str, expected: ClientMessage | FrameError
) -> None:
    assert frame_parse(raw) == expected


def test_a_message_without_an_id_gets_one() -> None:
    parsed = frame_parse(json.dumps({"type": "message", "text": "hi"}))

    assert isinstance(parsed, ClientMessage) and len(parsed.client_id) == 32


def test_the_frame_limit_fits_the_longest_accepted_text_in_any_script() -> None:
    assert frame_limit_bytes(100) == 64 * 1024
    assert frame_limit_bytes(32000) >= len(
        json.dumps({"text": "€" * 32000}, ensure_ascii=False).encode()
    )


def test_the_token_bucket_refills_over_time() -> None:
    now = [0.0]
    bucket = TokenBucket(capacity=2, per_seconds=2.0, clock=lambda: now[0])

    taken = [bucket.take(), bucket.take(), bucket.take()]
    now[0] = 1.0
    after_a_second = [bucket.take(), bucket.take()]

    assert taken == [True, True, False]
    assert after_a_second == [True, False]


# --- In a real browser: daphne and fakeclaude in their own processes ---------------------------

FINAL_STATUSES = ("answered", "failed", "rejected", "deferred")
BROWSER_REPLY = (
    "The **streamed** answer grows word by word until every one of these words is there."
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_chromium_a_user_signs_in_and_sees_the_streamed_reply_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    require_service("Chromium", shutil.which(CHROMIUM) is not None, f"{CHROMIUM} is missing")
    # A hasher the web process knows (the suite's fast MD5 is for this process only).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    # Not staff: the site's own sign-in page admits every active account.
    UserFactory(username="grace", first_name="Grace", password="a-long-Passw0rd")
    AccessRule.objects.create(action=AccessAction.ALLOW, transport="web")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")  # Playwright's sync API runs a loop
    from playwright.sync_api import sync_playwright

    claude_port, web_port = free_port(), free_port()
    env = process_env(claude_port)
    fake = fakeclaude_args(claude_port, "--tps", "25", "--reply", BROWSER_REPLY)
    base = f"http://127.0.0.1:{web_port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (
        background(fake, env, tmp_path / "fakeclaude.log", claude_port),
        background(daphne_args(web_port), env, tmp_path / "daphne.log", web_port),
        sync_playwright() as playwright,
    ):
        browser = chromium(playwright)
        page = browser.new_page()
        violations = watch_policy_violations(page)
        page.goto(f"{base}/chat/")
        assert page.url == f"{base}/accounts/login/?next=/chat/"
        page.fill("#id_username", "grace")
        page.fill("#id_password", "a-long-Passw0rd")
        page.click("button[type=submit]")
        page.wait_for_selector("#connection[data-state=online]")
        page.fill("#input", "Tell me something")
        page.keyboard.press("Enter")
        reply = page.locator(".message.assistant").last
        seen = []
        deadline = time.monotonic() + 60
        while (status := reply.get_attribute("data-status")) not in FINAL_STATUSES:
            if time.monotonic() > deadline:
                page.screenshot(path=str(ARTIFACTS / "chat-stuck.png"), full_page=True)
                log = log_tail(tmp_path / "daphne.log")
                raise AssertionError(f"the reply stayed {status!r}:\n{log}")
            seen.append(reply.inner_text() if reply.count() else "")
            time.sleep(0.03)
        page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
        final_html = reply.inner_html()
        workspace = page.text_content("#workspace-name")
        browser.close()

    growing = [text for text in dict.fromkeys(seen) if text.strip()]
    assert len(growing) >= 3, seen  # partial answers were on screen before the last one
    plain = BROWSER_REPLY.replace("**", "")
    assert all(plain.startswith(text.replace("**", "").strip()) for text in growing)
    assert "<strong>streamed</strong>" in final_html  # Markdown, rendered as elements
    assert workspace == "Assistant"
    assert violations == []  # the sign-in page and the chat, under the real policy
