"""Google Calendar tools with the person's own token, against the loopback fake Google
(real CalendarApi, real token service): listing runs at once, creating waits for /confirm."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.models import Chat, Identity, IntegrationAccount, PendingAction
from pipeline.tools import pending_action_confirm, tools_for
from pipeline.tools.google_calendar import CREATE_EVENT
from pipeline.tools.registry import ToolInputError
from pipeline.types import ToolUseBlock
from tests.factories import ChatFactory, IdentityFactory, MessageFactory, UserFactory
from tests.fakes.google import FakeGoogle
from tests.pipeline.builders import context

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def google(settings: Any) -> Iterator[FakeGoogle]:
    """The fake Google as this installation's Google; GitHub not configured."""
    with FakeGoogle() as fake:
        settings.INTEGRATIONS = {
            "github": {**settings.INTEGRATIONS["github"], "CLIENT_ID": "", "CLIENT_SECRET": ""},
            "google": {
                "CLIENT_ID": fake.client_id,
                "CLIENT_SECRET": fake.client_secret,
                "OIDC_URL": fake.issuer,
                "CALENDAR_URL": fake.calendar_url,
                "REVOKE_URL": fake.revoke_url,
            },
        }
        yield fake


def connect(fake: FakeGoogle, sub: str) -> tuple[Identity, Chat, int]:
    """``sub``'s Google account connected to a new identity; their chat and a message there."""
    identity, chat = IdentityFactory(), ChatFactory()
    message = MessageFactory(chat=chat, identity=identity)
    user = UserFactory(username=f"user-{sub}")
    Identity.objects.filter(pk=identity.pk).update(user=user)
    tokens = fake.obtain_tokens(sub, f"{sub}@example.com")
    IntegrationAccount.objects.create(
        user=user, provider="google", uid=sub, extra_data=tokens, login=f"{sub}@example.com"
    )
    return identity, chat, message.pk


def use(name: str, **arguments: object) -> ToolUseBlock:
    return ToolUseBlock(id="toolu_01", name=name, input=arguments)


async def test_the_person_lists_their_own_upcoming_events(google: FakeGoogle) -> None:
    ann, chat, message_pk = await sync_to_async(connect)(google, "ann")
    soon = timezone.now() + timedelta(hours=2)
    google.add_event("ann", summary="Dentist", start=soon, end=soon + timedelta(hours=1))
    google.add_event("bob", summary="Bob's secret", start=soon, end=soon + timedelta(hours=1))
    registry = await sync_to_async(tools_for)(
        context(identity_id=ann.pk, chat_pk=chat.pk, message_pk=message_pk)
    )

    result, record = await registry.call(use("google_calendar_list_events"))

    assert registry.names() == (
        "get_current_time",
        "schedule_reminder",
        "google_calendar_list_events",
        "google_calendar_create_event",
    )
    assert record.ok and not result.is_error
    assert "Dentist" in result.content and "Bob's secret" not in result.content
    assert '"htmlLink":"http' in result.content


async def test_creating_an_event_waits_for_confirmation(google: FakeGoogle) -> None:
    ann, chat, message_pk = await sync_to_async(connect)(google, "ann")
    registry = await sync_to_async(tools_for)(
        context(identity_id=ann.pk, chat_pk=chat.pk, message_pk=message_pk)
    )

    _, record = await registry.call(
        use(
            "google_calendar_create_event",
            summary="Standup",
            start="2030-03-01T10:00:00+01:00",
            end="2030-03-01T10:15:00+01:00",
        )
    )

    assert google.events("ann") == []
    assert record.confirm_prompt == (
        "Create calendar event “Standup” from 2030-03-01 10:00+01:00 to 2030-03-01 10:15+01:00?"
        " Reply /confirm or /cancel."
    )
    action = await PendingAction.objects.aget(pk=record.pending_action_id)
    assert (action.identity_id, action.chat_id, action.message_id) == (ann.pk, chat.pk, message_pk)

    reply = await sync_to_async(pending_action_confirm)(identity_id=ann.pk, chat_id=chat.pk)

    [event] = google.events("ann")
    assert event.summary == "Standup"
    assert event.starts_at == datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    assert reply == f"Created the event “Standup”: {event.html_link}"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"summary": "x", "start": "2030-03-01T10:00", "end": "2030-03-01T11:00+00:00"}, "offset"),
        ({"summary": "x", "start": "tomorrow", "end": "2030-03-01T11:00Z"}, "ISO 8601"),
        ({"summary": "x", "start": "2030-03-01T11:00Z", "end": "2030-03-01T10:00Z"}, "after"),
        ({"start": "2030-03-01T10:00Z", "end": "2030-03-01T11:00Z"}, "summary is required"),
    ],
)
def test_event_input_is_checked_before_anything_is_stored(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolInputError, match=message):
        CREATE_EVENT.prepare(arguments)
