"""The event catalog is the one list of event types: every emitter uses its names, every
example fits its schema, and the events real runs write validate against it."""

from __future__ import annotations

import ast
import itertools
import re
import typing
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.event_catalog import (
    EVENT_TYPES,
    PUBLIC_EVENT_TYPES,
    EventSchemaError,
    event_is_public,
    event_validate,
    webhook_data,
)
from aisystem.job_events import failed_job_event
from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    Event,
    Identity,
    MessageStatus,
    PendingActionStatus,
    RateLimitPolicy,
)
from pipeline.claude.breaker import BreakerPolicy, breaker_record_failure, breaker_record_success
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import RATE_LIMITED, UNAUTHORIZED, FakeClaude
from pipeline.processor import UnifiedMessageProcessor
from pipeline.types import AgentOutcome, InboundMessage
from tests.conftest import PRIMARY_KEY, SECONDARY_KEY
from tests.factories import ApiCredentialFactory
from tests.fakes.transport import RecordingTransport
from tests.helpers import ROOT

ISSUE_12_TYPES = {
    "message.received",
    "message.answered",
    "message.failed",
    "message.deferred",
    "access.denied",
    "budget.exceeded",
    "credential.cooling",
    "credential.invalid",
    "breaker.opened",
    "breaker.closed",
    "bridge.down",
    "bridge.up",
    "integration.connected",
    "integration.needs_reconnect",
    "job.failed",
    "webhook.disabled",
    "reminder.sent",
}


def test_the_public_types_are_exactly_the_documented_events() -> None:
    assert set(PUBLIC_EVENT_TYPES) == ISSUE_12_TYPES
    assert all(event_is_public(kind) for kind in ISSUE_12_TYPES)
    assert not event_is_public("gate.allowed") and not event_is_public("nope.never")


@pytest.mark.parametrize("kind", list(EVENT_TYPES))
def test_every_example_fits_its_schema(kind: str) -> None:
    event_type = EVENT_TYPES[kind]

    event_validate(kind, event_type.example)

    assert event_type.description
    assert event_type.private <= set(typing.get_type_hints(event_type.schema))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"service": "anthropic", "open_seconds": 30}, "missing 'error'"),
        (
            {"service": "anthropic", "open_seconds": 30, "error": "", "key": "x"},
            "unknown key 'key'",
        ),
        ({"service": "anthropic", "open_seconds": "30", "error": ""}, "'open_seconds' is str"),
        ({"service": "anthropic", "open_seconds": True, "error": ""}, "'open_seconds' is bool"),
        ({"service": None, "open_seconds": 30, "error": ""}, "'service' is NoneType"),
    ],
)
def test_data_that_does_not_fit_is_refused_naming_the_problem(
    data: dict[str, object], problem: str
) -> None:
    with pytest.raises(EventSchemaError, match=re.escape(problem)):
        event_validate("breaker.opened", data)


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(EventSchemaError, match="not in the event catalog"):
        event_validate("message.teleported", {})


def test_optional_keys_may_be_left_out_and_nested_types_are_checked() -> None:
    answered = dict(EVENT_TYPES["message.answered"].example)
    event_validate("message.answered", {**answered, "deferred": True, "text": "Hello!"})
    answered.pop("timings_ms")
    event_validate("message.answered", answered)

    with pytest.raises(EventSchemaError, match="'timings_ms'"):
        event_validate("message.answered", {**answered, "timings_ms": {"gate": "fast"}})


def test_webhooks_leave_out_the_live_feeds_previews() -> None:
    example = EVENT_TYPES["message.answered"].example

    assert "reply" in example
    assert "reply" not in webhook_data("message.answered", example)


# --- Emitters use the catalog's names -------------------------------------------------------

FAMILIES = sorted({kind.split(".", 1)[0] for kind in EVENT_TYPES})
EVENT_NAME = re.compile(rf"^({'|'.join(FAMILIES)})\.[a-z_]+$")


def event_names_in_source() -> set[tuple[str, str]]:
    """Every string in the code that looks like an event type, with where it is."""
    found = set()
    for package in ("aisystem", "pipeline", "telegram_bridge"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts or path.name == "event_catalog.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                text = node.value if isinstance(node, ast.Constant) else None
                if isinstance(text, str) and EVENT_NAME.match(text):
                    found.add((text, str(path.relative_to(ROOT))))
    return found


def test_every_event_name_in_the_code_is_in_the_catalog() -> None:
    names = event_names_in_source()

    assert {name for name, _ in names} >= {"job.failed", "breaker.opened", "access.denied"}
    assert [(name, where) for name, where in names if name not in EVENT_TYPES] == []


def test_names_built_from_a_status_are_all_in_the_catalog() -> None:
    """``agent.{outcome}``, ``message.{status}`` and ``action.{status}`` are formatted."""
    built = [
        *(f"agent.{outcome}" for outcome in typing.get_args(AgentOutcome)),
        *(f"message.{status}" for status in MessageStatus.values if status not in ("processing",)),
        *(f"action.{status}" for status in PendingActionStatus.values if status != "pending"),
    ]
    unknown = [kind for kind in built if kind not in EVENT_TYPES]

    assert unknown in ([], ["message.delivered"])  # an outbound status, never a final event
    assert "message.received" in built


# --- What real runs write validates -----------------------------------------------------------

_ids = itertools.count(1)


async def _no_sleep(seconds: float) -> None:
    return None


def inbound(text: str) -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id="42",
        chat_type=ChatType.PRIVATE,
        message_id=str(next(_ids)),
        sender_id="7",
        sender_username="ada",
        sender_name="Ada Lovelace",
        sent_at=timezone.now(),
        text=text,
        assistant_username="helperbot",
    )


@sync_to_async
def setup_keys() -> None:
    ApiCredentialFactory(label="first", secret=PRIMARY_KEY, priority=0)
    ApiCredentialFactory(label="second", secret=SECONDARY_KEY, priority=1)


@sync_to_async
def system_changes() -> None:
    policy = BreakerPolicy(failure_threshold=1, open_seconds=30)
    breaker_record_failure("anthropic", "overloaded", policy=policy)
    breaker_record_success("anthropic")
    failed_job_event(
        sender=None,
        task={"success": False, "func": "math.sqrt", "name": "root", "result": "math domain"},
    )


@sync_to_async
def stored_events() -> list[tuple[str, dict[str, Any]]]:
    return list(Event.objects.order_by("id").values_list("kind", "data"))


@pytest.mark.django_db(transaction=True)
async def test_the_events_a_run_writes_all_fit_the_catalog(fake_claude: FakeClaude) -> None:
    client = ClaudeClient(base_url=fake_claude.base_url, sleep=_no_sleep)
    processor = UnifiedMessageProcessor(client=client)
    transport = RecordingTransport()
    await setup_keys()

    await processor.process_message(inbound("nobody allowed me"), transport)
    await AccessRule.objects.acreate(action=AccessAction.ALLOW, match_everyone=True)
    fake_claude.set_scenario(RATE_LIMITED, api_key=PRIMARY_KEY, times=1)
    answered = await processor.process_message(inbound("hello"), transport)
    fake_claude.set_scenario(UNAUTHORIZED, api_key=SECONDARY_KEY, times=1)
    await processor.process_message(inbound("and again"), transport)
    identity = await Identity.objects.aget(external_id="7")
    await RateLimitPolicy.objects.acreate(name="ada", identity=identity, daily_token_budget=1)
    await processor.process_message(inbound("over budget"), transport)
    await system_changes()
    await client.aclose()

    events = await stored_events()
    assert answered.status == "answered"
    for kind, data in events:
        event_validate(kind, data)
    kinds = {kind for kind, _ in events}
    assert {
        "message.received",
        "access.denied",
        "message.answered",
        "credential.cooling",
        "credential.invalid",
        "budget.exceeded",
        "breaker.opened",
        "breaker.closed",
        "job.failed",
    } <= kinds
