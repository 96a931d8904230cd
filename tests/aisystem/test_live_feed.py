"""The live feed: who may watch, what a browser receives, and the page.

Sockets are driven with channels' ``WebsocketCommunicator`` against the real
``aisystem.asgi.application`` (origin check, session auth, routing), in the embedded mode: the
relay carries events from the ``Event`` table (see test_live_relay.py for the relay itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.test import Client

from aisystem.asgi import application
from aisystem.events import PendingEvent, events_record, system_event_emit
from aisystem.live.access import (
    CLOSE_FORBIDDEN,
    CLOSE_SIGN_IN,
    LiveFeedAccess,
    access_live_feed,
)
from aisystem.live.relay import relay_shutdown
from aisystem.live.selectors import session_still_staff
from aisystem.models import Event

ORIGIN = b"http://127.0.0.1"
TIMEOUT = 5
LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    "live": {"BACKEND": "aisystem.live.layers.LocalFanoutLayer"},
}


@pytest.fixture
async def embedded(settings: Any) -> AsyncIterator[None]:
    """The embedded default, whatever the environment says: fresh in-memory layers, the relay
    reading the database and polling fast; the relay is stopped after the test."""
    settings.CHANNEL_LAYERS = LAYERS
    settings.LIVE_FEED = {**settings.LIVE_FEED, "SOURCE": "database", "POLL_SECONDS": 0.01}
    yield
    await relay_shutdown()


def view_message() -> Permission:
    return Permission.objects.get(content_type__app_label="aisystem", codename="view_message")


def watcher(*, staff: bool = True, may_view: bool = True, username: str = "watcher") -> Any:
    """A user; ``may_view`` gives them ``aisystem.view_message``, which the feed requires."""
    user = get_user_model().objects.create_user(username, password="a-long-Passw0rd")
    user.is_staff = staff
    user.save()
    if may_view:
        user.user_permissions.add(view_message())
    return user


def session_cookie_for(*, staff: bool, username: str = "watcher", may_view: bool = True) -> str:
    user = watcher(staff=staff, may_view=may_view, username=username)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def socket(cookie: str = "", origin: bytes = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


async def staff_socket() -> tuple[WebsocketCommunicator, list[dict[str, Any]]]:
    """A connected staff socket and the history it was sent."""
    cookie = await sync_to_async(session_cookie_for)(staff=True)
    communicator = socket(cookie)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "history"
    return communicator, frame["events"]


async def next_events(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "events"
    return list(frame["events"])


async def close_code(communicator: WebsocketCommunicator) -> int:
    """How an accepted-then-refused socket was closed."""
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close"
    return int(output["code"])


def journey_events() -> list[Event]:
    return events_record(
        [
            PendingEvent(kind="message.received", summary="Text from @ann", data={"text": "hi"}),
            PendingEvent(kind="gate.allowed", summary="Allowed"),
        ],
        transport="api",
    )


# --- Who may watch ---------------------------------------------------------------------------


class TestAccess:
    def test_nobody_and_anonymous_are_asked_to_sign_in(self) -> None:
        assert access_live_feed(None).close_code == CLOSE_SIGN_IN
        assert access_live_feed(AnonymousUser()).close_code == CLOSE_SIGN_IN

    def test_an_inactive_staff_member_is_asked_to_sign_in(self) -> None:
        user = get_user_model()(username="gone", is_staff=True, is_active=False)
        assert access_live_feed(user) == LiveFeedAccess(False, CLOSE_SIGN_IN, "inactive")

    def test_a_signed_in_user_without_staff_status_is_forbidden(self) -> None:
        user = get_user_model()(username="user", is_staff=False, is_active=True)
        decision = access_live_feed(user)
        assert not decision.allowed and decision.close_code == CLOSE_FORBIDDEN

    @pytest.mark.django_db
    def test_active_staff_allowed_to_view_messages_and_superusers_may_watch(self) -> None:
        staff = watcher()
        root = get_user_model()(username="root", is_staff=True, is_superuser=True)
        assert access_live_feed(staff).allowed and access_live_feed(root).allowed

    @pytest.mark.django_db
    def test_staff_without_the_permission_to_view_messages_are_forbidden(self) -> None:
        staff = watcher(may_view=False)
        staff.user_permissions.set(Permission.objects.exclude(codename="view_message"))
        assert access_live_feed(staff) == LiveFeedAccess(
            False, CLOSE_FORBIDDEN, "no_view_permission"
        )

    @pytest.mark.django_db
    def test_the_permission_may_come_from_a_group(self) -> None:
        staff = watcher(may_view=False)
        viewers = Group.objects.create(name="viewers")
        viewers.permissions.add(view_message())
        staff.groups.add(viewers)
        assert access_live_feed(staff).allowed


# --- The socket ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_staff_receive_the_history_then_events_recorded_after_connecting(
    embedded: None,
) -> None:
    before = await sync_to_async(journey_events)()
    communicator, history = await staff_socket()
    assert [e["id"] for e in history] == [e.pk for e in before]
    assert history[0]["kind"] == "message.received" and history[0]["data"]["text"] == "hi"

    breaker = await sync_to_async(system_event_emit)("breaker.opened", "claude: breaker opened")
    live = await next_events(communicator)
    assert [e["id"] for e in live] == [breaker.pk]
    assert live[0]["summary"] == "claude: breaker opened" and live[0]["message_id"] is None
    assert set(live[0]) == {
        "id", "kind", "level", "summary", "transport", "chat_id", "message_id", "data",
        "created_at",
    }  # fmt: skip
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_history_is_the_newest_200_events_oldest_first(embedded: None) -> None:
    await sync_to_async(Event.objects.bulk_create)(
        [Event(kind="test.event", summary=f"event {n}") for n in range(205)]
    )
    communicator, history = await staff_socket()
    assert len(history) == 200
    assert [e["summary"] for e in history[:2]] == ["event 5", "event 6"]
    assert history[-1]["summary"] == "event 204"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_anonymous_visitors_are_closed_with_4401(embedded: None) -> None:
    communicator = socket()
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted only to be told why, with a code the page acts on
    assert await close_code(communicator) == CLOSE_SIGN_IN


@pytest.mark.django_db(transaction=True)
async def test_signed_in_users_without_staff_status_are_closed_with_4403(
    embedded: None,
) -> None:
    cookie = await sync_to_async(session_cookie_for)(staff=False)
    await sync_to_async(journey_events)()
    communicator = socket(cookie)
    await communicator.connect(timeout=TIMEOUT)
    assert await close_code(communicator) == CLOSE_FORBIDDEN


@pytest.mark.django_db(transaction=True)
async def test_staff_without_the_permission_to_view_messages_are_closed_with_4403(
    embedded: None,
) -> None:
    cookie = await sync_to_async(session_cookie_for)(staff=True, may_view=False)
    await sync_to_async(journey_events)()
    communicator = socket(cookie)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}  # no history frame


@pytest.mark.django_db(transaction=True)
async def test_a_page_from_another_origin_is_refused_even_for_staff(embedded: None) -> None:
    cookie = await sync_to_async(session_cookie_for)(staff=True)
    communicator = socket(cookie, origin=b"https://evil.example")
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_junk_from_the_browser_is_ignored_and_a_ping_is_answered(embedded: None) -> None:
    communicator, _ = await staff_socket()
    await communicator.send_to(text_data="not json {")
    await communicator.send_to(bytes_data=b"\x00\xff")
    await communicator.send_to(text_data='"a string"')
    await communicator.send_to(text_data='{"type": "subscribe", "group": "other"}')
    await communicator.send_to(text_data='{"type": "ping", "pad": "' + "x" * 5000 + '"}')
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    event = await sync_to_async(system_event_emit)("bridge.up", "Telegram bridge: up")
    assert [e["id"] for e in await next_events(communicator)] == [event.pk]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_demoted_staff_member_is_closed_with_4403_at_the_next_check(
    embedded: None, settings: Any
) -> None:
    settings.LIVE_FEED = {**settings.LIVE_FEED, "RECHECK_SECONDS": 0.05}
    communicator, _ = await staff_socket()
    await sync_to_async(get_user_model().objects.update)(is_staff=False)
    assert await close_code(communicator) == CLOSE_FORBIDDEN


@pytest.mark.django_db(transaction=True)
async def test_two_browsers_each_receive_every_event_once(embedded: None) -> None:
    first, _ = await staff_socket()
    cookie = await sync_to_async(session_cookie_for)(staff=True, username="second")
    second = socket(cookie)
    await second.connect(timeout=TIMEOUT)
    await second.receive_json_from(timeout=TIMEOUT)  # its history
    recorded = await sync_to_async(journey_events)()
    for communicator in (first, second):
        assert [e["id"] for e in await next_events(communicator)] == [e.pk for e in recorded]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_watcher_whose_permission_is_revoked_is_closed_with_4403_at_the_next_check(
    embedded: None, settings: Any
) -> None:
    settings.LIVE_FEED = {**settings.LIVE_FEED, "RECHECK_SECONDS": 0.05}
    communicator, _ = await staff_socket()
    user = await get_user_model().objects.aget()
    await sync_to_async(user.user_permissions.clear)()
    assert await close_code(communicator) == CLOSE_FORBIDDEN


# --- Sessions outlive pages -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_session_stops_counting_once_signed_out_or_demoted() -> None:
    from django.contrib.sessions.backends.db import SessionStore

    cookie = session_cookie_for(staff=True)
    user = get_user_model().objects.get()
    assert session_still_staff(cookie, user.pk)
    assert not session_still_staff(cookie, user.pk + 1)
    user.is_staff = False
    user.save()
    assert not session_still_staff(cookie, user.pk)
    user.is_staff = True
    user.save()
    assert session_still_staff(cookie, user.pk)
    user.user_permissions.remove(view_message())
    assert not session_still_staff(cookie, user.pk)
    user.user_permissions.add(view_message())
    assert session_still_staff(cookie, user.pk)
    user.set_password("another-long-Passw0rd")  # Django signs other sessions out
    user.save()
    assert not session_still_staff(cookie, user.pk)
    fresh = session_cookie_for(staff=True, username="other")
    SessionStore(session_key=fresh).delete()
    assert not session_still_staff(fresh, get_user_model().objects.get(username="other").pk)
    assert not session_still_staff(None, user.pk)


# --- The page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_sends_anonymous_visitors_to_sign_in(client: Client) -> None:
    response = client.get("/live/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/live/"


@pytest.mark.django_db
def test_the_page_sends_users_without_staff_status_to_sign_in(client: Client) -> None:
    client.cookies["sessionid"] = session_cookie_for(staff=False)
    response = client.get("/live/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_page_is_forbidden_to_staff_without_the_permission_to_view_messages(
    client: Client,
) -> None:
    client.cookies["sessionid"] = session_cookie_for(staff=True, may_view=False)
    response = client.get("/live/")
    assert response.status_code == 403
    assert b"live-feed" not in response.content


@pytest.mark.django_db
def test_the_page_renders_for_staff_allowed_to_view_messages(client: Client) -> None:
    client.cookies["sessionid"] = session_cookie_for(staff=True)
    response = client.get("/live/")
    assert response.status_code == 200
    assert 'id="live-feed"' in response.content.decode()


@pytest.mark.django_db
def test_the_page_renders_for_staff_with_its_scripts_and_no_inline_code(
    staff_client: Client,
) -> None:
    response = staff_client.get("/live/")
    assert response.status_code == 200
    html = response.content.decode()
    for part in ('id="live-feed"', 'data-socket-path="/ws/live/"', 'id="pause"', 'id="chart"'):
        assert part in html
    for name in ("chat", "workspace", "transport", "type", "status"):
        assert f'id="filter-{name}"' in html
    for script in ("live/model.js", "live/chart.js", "live/feed.js"):
        assert f'src="/static/{script}"' in html
    assert "onclick" not in html and "<script>" not in html  # CSP-friendly
    assert 'data-login-url="/admin/login/?next=/live/"' in html


@pytest.mark.django_db
def test_the_page_scripts_are_served(staff_client: Client) -> None:
    from django.contrib.staticfiles import finders

    for name in ("live/model.js", "live/chart.js", "live/feed.js", "live/feed.css"):
        assert finders.find(name), name
