"""What one message costs the database, and the shortcuts that keep it low: the statements
it issues (so a regression shows as a diff here, not as a slower benchmark), the Claude
call's log row written with the outcome, and the one-query conversation history."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.utils import timezone

from aisystem.models import (
    AccessAction,
    AccessRule,
    Chat,
    ChatType,
    CircuitBreaker,
    Conversation,
    Direction,
    ExternalCall,
    Identity,
    Message,
    MessageKind,
    MessageStatus,
    Workspace,
)
from pipeline.conversations import context_build, workspace_default
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from pipeline.types import InboundMessage
from tests.fakes.transport import RecordingTransport
from tests.pipeline.test_processor import make_processor, message

pytestmark = pytest.mark.django_db(transaction=True)

_ids = itertools.count(900_000)

# Read once per TTL by the per-process config copy (pipeline.config_cache), not per message.
_CONFIG_TABLES = {"aisystem_accessrule", "aisystem_ratelimitpolicy", "aisystem_workspace"}
_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"(\w+)"')


class _Statements:
    """An execute wrapper that notes each statement as "VERB table" ("SAVEPOINT", "BEGIN")."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        verb = sql.split(None, 1)[0].upper()
        if verb == "RELEASE":
            shape = "RELEASE SAVEPOINT"
        elif verb in ("BEGIN", "SAVEPOINT"):
            shape = verb
        else:
            table = _TABLE.search(sql)
            shape = f"{verb} {table.group(1) if table else '?'}"
        if shape.split(" ")[-1] not in _CONFIG_TABLES:
            self.seen.append(shape)
        return execute(sql, *args)


def _watch(statements: _Statements, on: bool) -> None:
    """Run in the thread every ORM call of the pipeline runs in (``sync_to_async``'s one)."""
    if on:
        connection.execute_wrappers.append(statements)
    else:
        connection.execute_wrappers.remove(statements)


async def _statements_of(call: Callable[[], Any]) -> list[str]:
    statements = _Statements()
    await sync_to_async(_watch)(statements, True)
    try:
        await call()
    finally:
        await sync_to_async(_watch)(statements, False)
    return statements.seen


@pytest.fixture
def processor(fake_claude: FakeClaude) -> UnifiedMessageProcessor:
    return make_processor(fake_claude)


@pytest.fixture
def allow_everyone() -> AccessRule:
    return AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)


async def test_an_answer_in_an_ongoing_chat_costs_twenty_two_statements_in_two_transactions(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The alert rules' cache, warmed by the first message, must not expire before the second
    # on a slow machine: the count is of a message's own statements, not of cache refills.
    monkeypatch.setattr("aisystem.alerts.rules.RULE_KINDS_TTL_SECONDS", 3600.0)
    transport = RecordingTransport()
    await processor.process_message(message("my name is Ada"), transport)  # sender, chat, history

    async def answer() -> None:
        result = await processor.process_message(message("what is my name?"), transport)
        assert result.status == "answered"

    seen = await _statements_of(answer)

    database_cache = settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache")
    expected = [
        # store.admit: the gate and the context, one transaction
        "SELECT aisystem_identity",
        "SELECT aisystem_chat",
        "SAVEPOINT",
        "INSERT aisystem_message",
        "RELEASE SAVEPOINT",
        "SELECT aisystem_message",  # the conversation and its history, in one query
        "INSERT aisystem_event",
        "SELECT aisystem_webhooksubscription",  # who wants message.received (the fan-out)
        # claude_store.call_open: breaker, key, the env key's cooldown marks (autocommit)
        "SELECT aisystem_circuitbreaker",
        "SELECT aisystem_apicredential",
        *(["SELECT aisystem_cache"] if database_cache else []),
        # recording.message_finish: the outcome and the call's log row, one transaction
        "INSERT aisystem_externalcall",
        "UPDATE aisystem_message",
        "SAVEPOINT",
        "INSERT aisystem_message",
        "RELEASE SAVEPOINT",
        "UPDATE aisystem_dailyusage",  # the usage rollup (the day's row exists already)
        "UPDATE aisystem_chat",
        "INSERT aisystem_event",
        "SELECT aisystem_webhooksubscription",  # who wants message.answered
    ]
    assert [shape for shape in seen if shape != "BEGIN"] == expected
    if connection.vendor == "sqlite":  # PostgreSQL's BEGIN is implicit, not a statement
        assert seen.count("BEGIN") == 2


async def test_the_claude_call_is_logged_once_with_the_answer(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    result = await processor.process_message(message("What is 2+2?"), RecordingTransport())

    calls = [call async for call in ExternalCall.objects.all()]
    assert result.status == "answered"
    assert len(calls) == 1
    call = calls[0]
    assert call.ok and call.status_code == 200 and call.request_id
    assert call.input_tokens == result.input_tokens and call.output_tokens == result.output_tokens


async def test_an_answer_after_a_failed_call_still_resets_the_breakers_count(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    await CircuitBreaker.objects.acreate(service="anthropic", consecutive_failures=2)

    result = await processor.process_message(message("hello"), RecordingTransport())

    breaker = await CircuitBreaker.objects.aget(service="anthropic")
    assert result.status == "answered"
    assert (breaker.state, breaker.consecutive_failures) == (CircuitBreaker.State.CLOSED, 0)
    assert await ExternalCall.objects.filter(ok=True).acount() == 1


class _HangingTransport(RecordingTransport):
    """Delivery never completes: the message is cut short after Claude answered."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        self.sending.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_claude_call_is_logged_even_when_processing_is_cut_short(
    processor: UnifiedMessageProcessor, allow_everyone: AccessRule
) -> None:
    transport = _HangingTransport()
    task = asyncio.create_task(processor.process_message(message("hello"), transport))
    await asyncio.wait_for(transport.sending.wait(), timeout=10)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    calls = [call async for call in ExternalCall.objects.all()]
    assert [(call.ok, call.status_code) for call in calls] == [(True, 200)]


# --- the conversation history, read in one query ------------------------------------------


def _stored(
    chat: Chat,
    identity: Identity,
    conversation: Conversation | None,
    text: str,
    *,
    direction: str = Direction.INBOUND,
    status: str = MessageStatus.ANSWERED,
    kind: str = MessageKind.TEXT,
    reply_to: Message | None = None,
) -> Message:
    return Message.objects.create(
        reply_to=reply_to,
        transport="telegram",
        chat=chat,
        transport_message_id=str(next(_ids)),
        direction=direction,
        conversation=conversation,
        identity=identity,
        kind=kind,
        status=status,
        text=text,
        created_at=timezone.now(),
    )


def _inbound(chat: Chat, text: str) -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id=chat.external_id,
        chat_type=chat.chat_type,
        message_id=str(next(_ids)),
        sender_id="7",
        sender_name="Ada",
        sent_at=timezone.now(),
        text=text,
    )


def test_history_holds_the_active_conversations_answered_exchanges_only() -> None:
    chat = Chat.objects.create(transport="telegram", external_id="42", chat_type=ChatType.PRIVATE)
    identity = Identity.objects.create(transport="telegram", external_id="7")
    workspace = workspace_default()
    ended = Conversation.objects.create(chat=chat, workspace=workspace, ended_at=timezone.now())
    other = Workspace.objects.create(slug="other", name="Other")
    elsewhere = Conversation.objects.create(chat=chat, workspace=other)
    active = Conversation.objects.create(chat=chat, workspace=workspace)
    _stored(chat, identity, ended, "from an ended conversation")
    _stored(chat, identity, elsewhere, "from another workspace")
    _stored(chat, identity, active, "first question")
    _stored(chat, identity, active, "first answer", direction=Direction.OUTBOUND)
    _stored(chat, identity, active, "/status", kind=MessageKind.COMMAND)
    _stored(chat, identity, active, "rejected one", status=MessageStatus.REJECTED)
    _stored(chat, identity, active, "")
    _stored(chat, identity, active, "second question")
    _stored(chat, identity, active, "second answer", direction=Direction.OUTBOUND)
    inbound = _stored(chat, identity, None, "third question", status=MessageStatus.PROCESSING)
    _stored(chat, identity, active, "a later reply", direction=Direction.OUTBOUND)

    context = context_build(_inbound(chat, "third question"), identity, chat, inbound)

    assert context.conversation_id == active.pk
    assert [(turn.role, turn.text) for turn in context.history] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
        ("assistant", "second answer"),
    ]


def test_history_pairs_answers_with_questions_stored_before_them_at_a_stop() -> None:
    """A bridge's stop stores the queued questions together; after the restart each is
    answered in turn, so the answers' pks come after every one of those questions."""
    chat = Chat.objects.create(transport="telegram", external_id="45", chat_type=ChatType.PRIVATE)
    identity = Identity.objects.create(transport="telegram", external_id="7")
    conversation = Conversation.objects.create(chat=chat, workspace=workspace_default())
    first = _stored(chat, identity, conversation, "question 0")
    second = _stored(chat, identity, conversation, "question 1")
    third = _stored(chat, identity, None, "question 2", status=MessageStatus.PROCESSING)
    later = _stored(chat, identity, conversation, "question 3")
    _stored(chat, identity, conversation, "answer 0", direction=Direction.OUTBOUND, reply_to=first)
    _stored(chat, identity, conversation, "answer 1", direction=Direction.OUTBOUND, reply_to=second)
    _stored(chat, identity, conversation, "answer 3", direction=Direction.OUTBOUND, reply_to=later)

    context = context_build(_inbound(chat, "question 2"), identity, chat, third)

    assert [turn.text for turn in context.history] == [
        "question 0",
        "answer 0",
        "question 1",
        "answer 1",
    ]


def test_history_keeps_the_latest_turns_up_to_the_workspace_limit() -> None:
    chat = Chat.objects.create(transport="telegram", external_id="43", chat_type=ChatType.PRIVATE)
    identity = Identity.objects.create(transport="telegram", external_id="7")
    workspace = workspace_default()
    Workspace.objects.filter(pk=workspace.pk).update(history_max_messages=2)
    workspace.refresh_from_db()
    conversation = Conversation.objects.create(chat=chat, workspace=workspace)
    for n in range(3):
        _stored(chat, identity, conversation, f"question {n}")
        _stored(chat, identity, conversation, f"answer {n}", direction=Direction.OUTBOUND)
    inbound = _stored(chat, identity, None, "next", status=MessageStatus.PROCESSING)
    chat.workspace = workspace  # bound, so the limit just set is the one read

    context = context_build(_inbound(chat, "next"), identity, chat, inbound)

    assert [turn.text for turn in context.history] == ["question 2", "answer 2"]


def test_a_chat_without_history_starts_its_conversation() -> None:
    chat = Chat.objects.create(transport="telegram", external_id="44", chat_type=ChatType.PRIVATE)
    identity = Identity.objects.create(transport="telegram", external_id="7")
    inbound = _stored(chat, identity, None, "hello", status=MessageStatus.PROCESSING)

    first = context_build(_inbound(chat, "hello"), identity, chat, inbound)
    again = context_build(_inbound(chat, "hello"), identity, chat, inbound)

    assert first.history == () and first.conversation_id == again.conversation_id
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert (conversation.chat_id, conversation.ended_at) == (chat.pk, None)
