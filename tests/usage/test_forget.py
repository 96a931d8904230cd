"""``/forget``: asks first; /confirm deletes the person's messages and data (revoking their
accounts at the provider), keeps an audit event without content, and leaves them free to
start again."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone

from aisystem.event_catalog import event_validate
from aisystem.models import (
    Conversation,
    DailyUsage,
    Direction,
    Event,
    Identity,
    IntegrationAccount,
    Message,
    MessageStatus,
    PendingAction,
    PendingActionStatus,
    PersonSettings,
    Reminder,
    Role,
    Workspace,
)
from aisystem.services.usage import usage_add, usage_day
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from tests.factories import ChatFactory, IdentityFactory, MessageFactory
from tests.fakes.github import FakeGitHub
from tests.integrations import conftest as integration_fixtures
from tests.integrations.accounts import github_account
from tests.usage.conftest import FileRecordingTransport, message

github = integration_fixtures.github  # the GitHub fake, configured as staff would

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "Delete your messages and what I know about you? Reply /confirm or /cancel."


async def ada_with_history(processor: UnifiedMessageProcessor, transport: Any) -> Identity:
    """Ada (made a trusted member by staff) has talked, set a time zone and a reminder."""
    await processor.process_message(message("my secret is 42"), transport)
    await processor.process_message(message("/timezone Europe/Berlin"), transport)
    await processor.process_message(message("/remind in 2h call Bob"), transport)
    await Identity.objects.filter(external_id="7").aupdate(role=Role.TRUSTED)
    return await Identity.objects.aget(external_id="7")


async def test_forget_asks_first_and_nothing_goes_before_the_confirmation(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    transport = FileRecordingTransport()
    await ada_with_history(processor, transport)

    result = await processor.process_message(message("/forget"), transport)

    action = await PendingAction.objects.aget()
    assert result.reply.endswith(QUESTION)
    assert "- your connected accounts: access revoked, then removed." in result.reply
    assert result.pending_action_id == action.pk  # the transports' Confirm/Cancel buttons
    assert (action.tool, action.status) == ("identity_forget", PendingActionStatus.PENDING)
    assert await Message.objects.filter(text="my secret is 42").aexists()


async def test_cancel_keeps_everything(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    transport = FileRecordingTransport()
    await ada_with_history(processor, transport)
    await processor.process_message(message("/forget"), transport)

    result = await processor.process_message(message("/cancel"), transport)

    assert result.reply == "Cancelled: Delete your messages and what I know about you."
    assert await Message.objects.filter(text="my secret is 42").aexists()
    assert await Reminder.objects.acount() == 1


async def test_confirm_deletes_their_data_revokes_their_accounts_and_keeps_a_contentless_audit(
    processor: UnifiedMessageProcessor, allow_everyone: Any, github: FakeGitHub
) -> None:
    transport = FileRecordingTransport()
    ada = await ada_with_history(processor, transport)
    await Identity.objects.filter(pk=ada.pk).aupdate(username="ada")
    account = await sync_to_async(github_account)(github, ada)
    token = account.extra_data["access_token"]
    bob = await sync_to_async(IdentityFactory)()
    group = await sync_to_async(ChatFactory)(chat_type="supergroup")
    for who, text in ((ada, "ada in the group"), (bob, "bob in the group")):
        await sync_to_async(MessageFactory)(
            identity=who, chat=group, text=text, status=MessageStatus.IGNORED
        )
    workspace = await Workspace.objects.aget(is_default=True)
    earlier = usage_day(timezone.now()) - timedelta(days=3)
    await sync_to_async(usage_add)(
        day=earlier, workspace_id=workspace.pk, identity_id=ada.pk, messages=5,
        cost_usd=Decimal("0.5"),
    )  # fmt: skip
    await processor.process_message(message("/forget"), transport)

    result = await processor.process_message(message("/confirm"), transport)

    assert result.reply.startswith("Done: I deleted ")
    assert "I disconnected 1 connected account." in result.reply
    assert "it's a fresh start" in result.reply
    left = [m async for m in Message.objects.filter(identity=ada).order_by("pk")]
    assert [(m.direction, m.text) for m in left] == [
        (Direction.INBOUND, "/forget"),
        (Direction.OUTBOUND, left[1].text),
        (Direction.INBOUND, "/confirm"),
        (Direction.OUTBOUND, result.reply),
    ]
    assert left[1].text.endswith(QUESTION)
    assert await Message.objects.filter(text="bob in the group").aexists()
    assert not await Message.objects.filter(text__contains="secret").aexists()
    assert not await Message.objects.filter(text="ada in the group").aexists()
    assert not await Reminder.objects.aexists()
    assert not await PersonSettings.objects.aexists()
    assert not await IntegrationAccount.objects.aexists()
    assert not github.token_is_active(token)
    assert not await get_user_model().objects.filter(pk=account.user_id).aexists()
    kept = await Identity.objects.aget(pk=ada.pk)
    assert (kept.role, kept.username, kept.display_name) == (Role.TRUSTED, "", "")
    assert (await PendingAction.objects.aget()).status == PendingActionStatus.DONE
    old = await DailyUsage.objects.aget(day=earlier)
    today = await DailyUsage.objects.aget(day=usage_day(timezone.now()), identity=ada)
    assert (old.identity_id, old.messages) == (None, 5)  # an anonymous total for staff
    assert today.messages >= 3  # today's counters stay, for the daily budget
    forgotten = await Event.objects.aget(kind="identity.forgotten")
    event_validate(forgotten.kind, forgotten.data)
    assert forgotten.data["identity_id"] == ada.pk
    assert forgotten.data["reminders"] == 1 and forgotten.data["accounts"] == 1
    assert forgotten.data["messages"] == 7  # 3 exchanges in private, 1 in the group
    everything = json.dumps([e.data async for e in Event.objects.all()])
    assert "secret" not in everything and "call Bob" not in everything
    assert not await Conversation.objects.filter(chat__external_id="42", ended_at=None).aexists()


async def test_after_forgetting_the_person_writes_again_and_starts_afresh(
    processor: UnifiedMessageProcessor, allow_everyone: Any, fake_claude: FakeClaude
) -> None:
    transport = FileRecordingTransport()
    await ada_with_history(processor, transport)
    await processor.process_message(message("/forget"), transport)
    await processor.process_message(message("/confirm"), transport)

    result = await processor.process_message(message("what did I tell you?"), transport)

    assert result.status == "answered"
    sent = json.dumps(fake_claude.requests[-1].body)
    assert "what did I tell you?" in sent and "secret" not in sent
    again = await Identity.objects.aget(external_id="7")
    assert (again.username, again.display_name) == ("ada", "Ada Lovelace")


async def test_a_provider_that_cannot_confirm_the_revocation_is_named(
    processor: UnifiedMessageProcessor, allow_everyone: Any, github: FakeGitHub
) -> None:
    transport = FileRecordingTransport()
    ada = await ada_with_history(processor, transport)
    await Identity.objects.filter(pk=ada.pk).aupdate(username="ada")
    await sync_to_async(github_account)(github, ada)
    github.fail_next("DELETE", "/api/v3/applications/", 500)
    await processor.process_message(message("/forget"), transport)

    result = await processor.process_message(message("/confirm"), transport)

    assert "GitHub could not confirm that my access is revoked" in result.reply
    assert not await IntegrationAccount.objects.aexists()
