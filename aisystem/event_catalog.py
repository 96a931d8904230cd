"""The event catalog: every kind of ``Event`` the system writes, with its payload schema.

One list, so that the live feed, outgoing webhooks and alerts agree on names and shapes, and so
that tests can check each emitter against it (``tests/webhooks/test_catalog.py``):

* **public** types are the contract with the outside: webhooks carry them (subscriptions name
  them), and their ``data`` only grows compatibly (new optional keys), never renames a key;
* **internal** types are the steps of a message's journey and other detail for staff in the
  live feed (``gate.allowed``, ``context.built``, ``route.planned``, ``agent.*``…); they may
  change whenever the pipeline does, so no webhook ever carries them.

Each schema is a ``TypedDict`` (so emitters can be type-checked too) that ``event_validate``
checks at run time: required keys present, no unknown keys, values of the declared JSON type.
``private`` keys are live-feed only: previews of what people wrote stay inside the system, and
``webhook_data`` leaves them out of a webhook's body.

This module deliberately has no ``from __future__ import annotations``: on Python 3.11 a
``TypedDict`` built from string annotations does not see ``NotRequired`` (every key would be
required), and ``event_validate`` reads the annotations at run time.
"""

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

# --- The payloads ---------------------------------------------------------------------------


class MessageReceived(TypedDict):
    kind: str  # the content kind: text, photo, document…
    chat_type: str
    edited: bool
    catch_up: bool
    text: str  # a preview, live feed only


class MessageOutcome(TypedDict):
    """The end of a message's journey: answered, failed, deferred (and the internal ones)."""

    status: str
    reason: str
    delivered: bool
    parts: int
    reply: str  # a preview, live feed only
    cost_usd: str
    timings_ms: NotRequired[dict[str, float]]
    deferred: NotRequired[bool]  # answered later, once Claude was back
    background: NotRequired[bool]  # answered by a background task (/bg, a large PDF)
    orphaned_from: NotRequired[str]  # the role ("web", "bridge", "worker") of a dead process
    queued: NotRequired[bool]  # handed to the outbox rather than delivered at once
    outcome: NotRequired[str]  # the agent's outcome, for answers produced later
    text: NotRequired[str]  # the answer's full text: carried for REST API chats only


class AccessDenied(TypedDict):
    reason: str
    rule: int | None
    notified: bool


class CredentialCooling(TypedDict):
    label: str
    credential_id: int | None
    seconds: float


class CredentialInvalid(TypedDict):
    label: str
    credential_id: int | None


class BreakerOpened(TypedDict):
    service: str
    open_seconds: int
    error: str


class BreakerClosed(TypedDict):
    service: str


class BridgeState(TypedDict):
    """A Telegram bridge's state changed (``bridge.up``/``bridge.down`` are the public pair)."""

    session: str
    state: str
    previous_state: NotRequired[str]
    reason: NotRequired[str]
    last_heartbeat_at: NotRequired[str | None]


class IntegrationConnected(TypedDict):
    provider: str
    account_id: int
    login: str


class IntegrationNeedsReconnect(TypedDict):
    provider: str
    account_id: int
    reason: str


class JobFailed(TypedDict):
    job: str
    func: str
    group: str


class WebhookDisabled(TypedDict):
    subscription: str  # the name; never the URL, which may carry a token
    subscription_id: int
    failing_since: str
    last_error: str


class WebhookTest(TypedDict):
    subscription: str
    subscription_id: int
    message: str


class ReminderSent(TypedDict):
    reminder_id: int
    late_seconds: NotRequired[int]
    recurring: NotRequired[bool]


class CredentialsAllCooling(TypedDict):
    """No API key is usable: each is cooling down (or out of rotation)."""

    credentials: int
    next_available_at: str | None


class CredentialAvailable(TypedDict):
    label: str
    credential_id: int | None


class BudgetWarning(TypedDict):
    """Today's usage of an identity passed 80 % of a daily budget (``budget`` says which)."""

    identity_id: int
    budget: str  # "tokens" or "cost"
    used: str
    limit: str
    percent: int


class GateAllowed(TypedDict):
    rule: int | None


class ContextBuilt(TypedDict):
    workspace: str
    history: int
    history_dropped: int
    conversation: int | None


class RoutePlanned(TypedDict):
    type: str
    handler: str
    model: str
    stream: bool
    priority: int
    reason: str


class AgentFinished(TypedDict):
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: str
    first_text_ms: float | None
    tools: list[str]
    error: str


class ActionChanged(TypedDict):
    action_id: int
    tool: str


class IdentityForgotten(TypedDict):
    """A person's ``/forget``, confirmed: what went, as counts (never any content)."""

    identity_id: int
    messages: int
    conversations: int
    reminders: int
    accounts: int
    accounts_not_revoked: int


# --- The catalog ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    """One kind of event. ``example`` is a valid ``data`` (tests check it, the README shows
    it); ``private`` names the keys that stay in the live feed and never go out by webhook."""

    name: str
    schema: type[Any]
    description: str
    example: Mapping[str, object]
    public: bool
    private: frozenset[str] = field(default_factory=frozenset)


_OUTCOME_EXAMPLE: dict[str, object] = {
    "status": "answered",
    "reason": "",
    "delivered": True,
    "parts": 1,
    "reply": "Hello! How can I help?",
    "cost_usd": "0.000420",
    "timings_ms": {"gate": 1.2, "total": 812.5},
}
_REPLY = frozenset({"reply"})
_DENIED_EXAMPLE: dict[str, object] = {"reason": "no_matching_rule", "rule": None, "notified": True}
_BRIDGE_EXAMPLE: dict[str, object] = {
    "session": "default",
    "state": "connected",
    "previous_state": "connecting",
}
_AGENT_EXAMPLE: dict[str, object] = {
    "model": "claude-sonnet-4-6",
    "input_tokens": 12,
    "output_tokens": 30,
    "cost_usd": "0.000486",
    "first_text_ms": 310.0,
    "tools": [],
    "error": "",
}


def _public(
    name: str,
    schema: type[Any],
    description: str,
    example: Mapping[str, object],
    private: frozenset[str] = frozenset(),
) -> EventType:
    return EventType(name, schema, description, example, public=True, private=private)


def _internal(
    name: str, schema: type[Any], description: str, example: Mapping[str, object]
) -> EventType:
    return EventType(name, schema, description, example, public=False)


_TYPES = [
    # Public: what webhooks (and alerts) may subscribe to.
    _public(
        "message.received",
        MessageReceived,
        "A message reached the pipeline and was recorded.",
        {"kind": "text", "chat_type": "private", "edited": False, "catch_up": False, "text": "hi"},
        private=frozenset({"text"}),
    ),
    _public(
        "message.answered",
        MessageOutcome,
        "A message was answered (``deferred``: later, once Claude was back).",
        _OUTCOME_EXAMPLE,
        _REPLY,
    ),
    _public(
        "message.failed",
        MessageOutcome,
        "A message could not be answered.",
        {**_OUTCOME_EXAMPLE, "status": "failed", "reason": "claude_failed", "reply": ""},
        _REPLY,
    ),
    _public(
        "message.deferred",
        MessageOutcome,
        "Claude is unavailable: the message will be answered when it is back.",
        {**_OUTCOME_EXAMPLE, "status": "deferred", "reason": "claude_unavailable"},
        _REPLY,
    ),
    _public(
        "access.denied",
        AccessDenied,
        "The security gate refused a message (rules, rate limits, oversized input).",
        _DENIED_EXAMPLE,
    ),
    _public(
        "budget.exceeded",
        AccessDenied,
        "The security gate refused a message: a daily token or cost budget is used up.",
        {**_DENIED_EXAMPLE, "reason": "token_budget_exceeded", "notified": False},
    ),
    _public(
        "credential.cooling",
        CredentialCooling,
        "An API key was rate-limited and rests for ``seconds``.",
        {"label": "primary", "credential_id": 1, "seconds": 30.0},
    ),
    _public(
        "credential.invalid",
        CredentialInvalid,
        "An API key was refused by the provider and taken out of rotation.",
        {"label": "primary", "credential_id": 1},
    ),
    _public(
        "breaker.opened",
        BreakerOpened,
        "Calls to a service are refused for ``open_seconds`` after repeated failures.",
        {"service": "anthropic", "open_seconds": 30, "error": "overloaded (529)"},
    ),
    _public(
        "breaker.closed",
        BreakerClosed,
        "A service answers again: calls flow.",
        {"service": "anthropic"},
    ),
    _public("bridge.up", BridgeState, "A Telegram bridge is connected.", _BRIDGE_EXAMPLE),
    _public(
        "bridge.down",
        BridgeState,
        "A Telegram bridge lost its connection or its heartbeat stopped.",
        {"session": "default", "state": "disconnected", "last_heartbeat_at": None},
    ),
    _public(
        "integration.connected",
        IntegrationConnected,
        "A person connected a provider account (GitHub, Google).",
        {"provider": "github", "account_id": 7, "login": "octocat"},
    ),
    _public(
        "integration.needs_reconnect",
        IntegrationNeedsReconnect,
        "A connected account's token stopped working; its owner was asked to reconnect.",
        {"provider": "github", "account_id": 7, "reason": "refresh token revoked"},
    ),
    _public(
        "job.failed",
        JobFailed,
        "A background job raised.",
        {"job": "negative-root", "func": "math.sqrt", "group": ""},
    ),
    _public(
        "webhook.disabled",
        WebhookDisabled,
        "An endpoint failed for days and was disabled; its deliveries wait until re-enabled.",
        {
            "subscription": "ops",
            "subscription_id": 3,
            "failing_since": "2026-01-01T09:00:00+00:00",
            "last_error": "HTTP 503",
        },
    ),
    _public(
        "reminder.sent",
        ReminderSent,
        "A reminder or scheduled prompt was delivered.",
        {"reminder_id": 12, "late_seconds": 0, "recurring": False},
    ),
    # Internal for now, emitted for alerts (``aisystem.alerts``); alert rules may name them.
    _internal(
        "credential.all_cooling",
        CredentialsAllCooling,
        "Every API key is cooling down: Claude calls wait for the first to come back.",
        {"credentials": 2, "next_available_at": "2026-01-01T09:00:30+00:00"},
    ),
    _internal(
        "credential.available",
        CredentialAvailable,
        "An API key is usable again after every key was cooling down.",
        {"label": "primary", "credential_id": 1},
    ),
    _internal(
        "budget.warning",
        BudgetWarning,
        "An identity used 80 % of a daily token or cost budget today (once a day per budget).",
        {"identity_id": 7, "budget": "tokens", "used": "40500", "limit": "50000", "percent": 81},
    ),
    # Internal: the live feed's detail.
    _internal(
        "webhook.test",
        WebhookTest,
        "Sent from the admin to one endpoint on request; never fanned out.",
        {"subscription": "ops", "subscription_id": 3, "message": "A test event from aisystem."},
    ),
    _internal("gate.allowed", GateAllowed, "The security gate let a message in.", {"rule": 4}),
    _internal(
        "context.built",
        ContextBuilt,
        "Workspace and history chosen.",
        {"workspace": "default", "history": 4, "history_dropped": 0, "conversation": 9},
    ),
    _internal(
        "route.planned",
        RoutePlanned,
        "The type router's plan.",
        {
            "type": "text",
            "handler": "agent",
            "model": "claude-sonnet-4-6",
            "stream": True,
            "priority": 0,
            "reason": "",
        },
    ),
    *(
        _internal(f"agent.{outcome}", AgentFinished, f"The agent's run ended: {outcome}.", example)
        for outcome, example in (
            ("ok", _AGENT_EXAMPLE),
            ("failed", {**_AGENT_EXAMPLE, "error": "HTTP 400"}),
            ("unavailable", {**_AGENT_EXAMPLE, "error": "breaker open"}),
            ("cancelled", _AGENT_EXAMPLE),
        )
    ),
    *(
        _internal(f"message.{status}", MessageOutcome, description, example)
        for status, description, example in (
            ("rejected", "Refused at the gate.", {**_OUTCOME_EXAMPLE, "status": "rejected"}),
            ("ignored", "Nothing to answer.", {**_OUTCOME_EXAMPLE, "status": "ignored"}),
            ("interrupted", "Cut short.", {**_OUTCOME_EXAMPLE, "status": "interrupted"}),
        )
    ),
    *(
        _internal(
            f"action.{status}",
            ActionChanged,
            f"A proposed tool action is {status}.",
            {"action_id": 5, "tool": "github_create_issue"},
        )
        for status in ("proposed", "running", "done", "failed", "cancelled", "expired")
    ),
    _internal(
        "identity.forgotten",
        IdentityForgotten,
        "A person confirmed /forget: their messages and data were deleted (the audit keeps "
        "only these counts).",
        {
            "identity_id": 7,
            "messages": 120,
            "conversations": 3,
            "reminders": 1,
            "accounts": 1,
            "accounts_not_revoked": 0,
        },
    ),
    # The bridge's other states (connected and disconnected are bridge.up and bridge.down).
    *(
        _internal(f"bridge.{state}", BridgeState, f"Telegram bridge: {state}.", _BRIDGE_EXAMPLE)
        for state in ("connecting", "revoked", "stopped")
    ),
]

EVENT_TYPES: dict[str, EventType] = {event_type.name: event_type for event_type in _TYPES}
PUBLIC_EVENT_TYPES: tuple[str, ...] = tuple(t.name for t in _TYPES if t.public)


class EventSchemaError(ValueError):
    """``data`` does not match its event type's schema (or the type is not in the catalog)."""


def event_is_public(kind: str) -> bool:
    """True if webhooks may carry ``kind``."""
    event_type = EVENT_TYPES.get(kind)
    return event_type is not None and event_type.public


def event_validate(kind: str, data: Mapping[str, object]) -> None:
    """Check ``data`` against the schema of ``kind``; raises ``EventSchemaError`` naming every
    problem (an unknown type, a missing or unknown key, a value of the wrong type)."""
    event_type = EVENT_TYPES.get(kind)
    if event_type is None:
        raise EventSchemaError(f"{kind!r} is not in the event catalog")
    hints = typing.get_type_hints(event_type.schema)
    required: frozenset[str] = event_type.schema.__required_keys__
    problems = [f"missing {key!r}" for key in sorted(required - data.keys())]
    for key, value in data.items():
        if key not in hints:
            problems.append(f"unknown key {key!r}")
        elif not _matches(value, hints[key]):
            problems.append(f"{key!r} is {type(value).__name__}, not {_name(hints[key])}")
    if problems:
        raise EventSchemaError(f"{kind}: " + "; ".join(problems))


def webhook_data(kind: str, data: Mapping[str, object]) -> dict[str, object]:
    """``data`` as a webhook carries it: without the type's live-feed-only keys."""
    event_type = EVENT_TYPES.get(kind)
    private = event_type.private if event_type else frozenset()
    return {key: value for key, value in data.items() if key not in private}


def _matches(value: object, annotation: Any) -> bool:
    """Whether ``value`` (a JSON-shaped Python value) fits ``annotation``."""
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        key_type, item = typing.get_args(annotation)
        return isinstance(value, dict) and all(
            _matches(k, key_type) and _matches(v, item) for k, v in value.items()
        )
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:  # JSON does not tell 3 from 3.0
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
