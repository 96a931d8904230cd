"""Degradation that answers later: a model-side failure defers, a refused request fails.

Everything runs for real: the pipeline, the database, the anthropic SDK against the fake
Messages API on loopback, and the deferred job that answers once Claude is back.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    Direction,
    ExternalCall,
    Message,
    MessageStatus,
    OutboxItem,
    Workspace,
)
from pipeline.claude.breaker import breaker_state
from pipeline.claude.client import ClaudeClient
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import (
    DROP_CONNECTION,
    OVERLOADED,
    SERVER_ERROR,
    STREAM_ERROR,
    FakeClaude,
    Scenario,
)
from pipeline.fakeclaude.scenarios import Failure
from pipeline.processor import UnifiedMessageProcessor
from pipeline.replies import DEFERRED_REPLY, FAILED_REPLY
from pipeline.types import InboundMessage
from tests.fakes.transport import RecordingTransport
from tests.helpers import free_port
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

_ids = itertools.count(1)
ATTEMPTS = 3
# Headers and message_start go out at once, then nothing for longer than the client waits.
SILENT = Scenario(name="silent", time_to_first_token=5.0)
LONG_ANSWER = "The first part of the answer, then the rest of it, which never arrives."


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture(autouse=True)
def claude_settings(settings: Any) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "MAX_ATTEMPTS": ATTEMPTS, "TIMEOUT_SECONDS": 0.3}


@pytest.fixture(autouse=True)
def allow_everyone() -> Iterator[AccessRule]:
    yield AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)


def processor_for(base_url: str) -> UnifiedMessageProcessor:
    client = ClaudeClient(base_url=base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep)
    return UnifiedMessageProcessor(client=client)


def message(text: str) -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id="42",
        chat_type=ChatType.PRIVATE,
        message_id=str(next(_ids)),
        sender_id="7",
        sender_name="Ada Lovelace",
        sent_at=timezone.now(),
        text=text,
    )


def job_client(fake: FakeClaude) -> ClaudeClient:
    return ClaudeClient(base_url=fake.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep)


def test_an_api_overloaded_on_every_attempt_defers_and_answers_once_after_recovery(
    fake_claude: FakeClaude,
) -> None:
    fake_claude.set_scenario(OVERLOADED)
    transport = RecordingTransport()

    result = async_to_sync(processor_for(fake_claude.base_url).process_message)(
        message("what is the capital of France?"), transport
    )

    assert result.status == "deferred"
    assert transport.texts == [DEFERRED_REPLY]
    assert transport.reactions[-1][1] == "❌"
    inbound = Message.objects.get(pk=result.message_id)
    assert (inbound.status, inbound.status_reason) == ("deferred", "claude_unavailable")
    assert [call.status_code for call in ExternalCall.objects.order_by("pk")] == [529] * ATTEMPTS

    fake_claude.reset()  # Claude is back
    answered = deferred_answer(client=job_client(fake_claude))
    again = deferred_answer(client=job_client(fake_claude))

    assert (answered, again) == (1, 0)
    inbound.refresh_from_db()
    assert (inbound.status, inbound.status_reason) == (MessageStatus.ANSWERED, "deferred")
    item = OutboxItem.objects.get()
    assert "capital of France" in item.text
    assert item.reply_to_transport_message_id == inbound.transport_message_id
    assert len(fake_claude.requests) == 1


@pytest.mark.parametrize(
    "scenario",
    [SERVER_ERROR, STREAM_ERROR, DROP_CONNECTION, SILENT],
    ids=["server_error", "stream_error", "dropped_connection", "timeout"],
)
async def test_a_model_side_failure_after_every_retry_defers(
    fake_claude: FakeClaude, scenario: Scenario
) -> None:
    fake_claude.set_scenario(scenario)
    transport = RecordingTransport()

    result = await processor_for(fake_claude.base_url).process_message(message("hi"), transport)

    assert result.status == "deferred"
    assert transport.texts == [DEFERRED_REPLY]
    assert len(fake_claude.requests) == ATTEMPTS
    inbound = await Message.objects.aget(pk=result.message_id)
    assert inbound.status == MessageStatus.DEFERRED


async def test_an_unreachable_api_defers() -> None:
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    transport = RecordingTransport()

    result = await processor_for(nobody_listens).process_message(message("hi"), transport)

    assert result.status == "deferred"
    assert transport.texts == [DEFERRED_REPLY]
    assert await ExternalCall.objects.filter(ok=False).acount() == ATTEMPTS


def test_a_partly_streamed_answer_gives_way_to_the_notice_and_the_answer_comes_anew(
    fake_claude: FakeClaude,
) -> None:
    cut_short = Scenario(
        name="cut_short",
        reply_text=LONG_ANSWER,
        failure=Failure.DROP_CONNECTION,
        fail_after_deltas=3,
    )
    fake_claude.set_scenario(cut_short)
    transport = RecordingTransport(streams=True)

    result = async_to_sync(processor_for(fake_claude.base_url).process_message)(
        message("tell me"), transport
    )

    assert result.status == "deferred"
    [shown] = transport.sent
    assert LONG_ANSWER.startswith(shown.text) and shown.text  # part of it was on screen
    assert shown.final_text == DEFERRED_REPLY  # then replaced: no half answer left standing

    fake_claude.reset()
    fake_claude.set_scenario(Scenario(name="whole", reply_text=LONG_ANSWER))
    assert deferred_answer(client=job_client(fake_claude)) == 1

    [item] = OutboxItem.objects.all()  # a new message, not an edit of the notice
    assert item.text == LONG_ANSWER
    assert (
        item.reply_to_transport_message_id
        == Message.objects.get(pk=result.message_id).transport_message_id
    )


async def test_a_request_claude_refuses_fails_at_once_with_a_clear_answer(
    fake_claude: FakeClaude,
) -> None:
    # An empty model name is a 400 invalid_request_error: sending it again cannot help.
    await Workspace.objects.acreate(slug="broken", name="Broken", model="", is_default=True)
    transport = RecordingTransport()

    result = await processor_for(fake_claude.base_url).process_message(message("hi"), transport)

    assert result.status == "failed"
    assert transport.texts == [FAILED_REPLY]
    assert len(fake_claude.requests) == 1  # not retried
    inbound = await Message.objects.aget(pk=result.message_id)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.FAILED, "claude_failed")
    assert await Message.objects.filter(status=MessageStatus.DEFERRED).acount() == 0


def test_a_deferred_message_claude_then_refuses_fails_and_its_sender_is_told(
    fake_claude: FakeClaude,
) -> None:
    fake_claude.set_scenario(OVERLOADED)
    result = async_to_sync(processor_for(fake_claude.base_url).process_message)(
        message("hi"), RecordingTransport()
    )
    assert result.status == "deferred"
    workspace = Workspace.objects.get(is_default=True)
    workspace.model = ""  # staff broke the model name meanwhile
    workspace.save()
    fake_claude.reset()

    assert deferred_answer(client=job_client(fake_claude)) == 1

    inbound = Message.objects.get(pk=result.message_id)
    assert (inbound.status, inbound.status_reason) == (MessageStatus.FAILED, "claude_failed")
    assert OutboxItem.objects.get().text == FAILED_REPLY


def test_a_deferred_message_stays_deferred_while_claude_is_still_overloaded(
    fake_claude: FakeClaude,
) -> None:
    fake_claude.set_scenario(OVERLOADED)
    result = async_to_sync(processor_for(fake_claude.base_url).process_message)(
        message("hi"), RecordingTransport()
    )

    assert deferred_answer(client=job_client(fake_claude)) == 0

    inbound = Message.objects.get(pk=result.message_id)
    assert inbound.status == MessageStatus.DEFERRED
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exclude(text=DEFERRED_REPLY)
    assert OutboxItem.objects.count() == 0
    assert breaker_state("anthropic") == "closed"  # two failed calls: below the threshold
