"""The pipeline's database side, for steps 1 and 2: sync functions the processor runs in a
worker thread (``sync_to_async``), each one short transaction that returns plain values.

``admit`` records the inbound message and runs the security gate and the context builder
in one transaction: on SQLite every transaction takes the write lock, so fewer, larger ones
are what keeps a busy chat from queueing on the lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from aisystem.events import PendingEvent, events_record
from aisystem.metrics.instruments import message_observe_on_commit
from aisystem.models import (
    Chat,
    Direction,
    Identity,
    Message,
    MessageStatus,
    RateLimitPolicy,
    Role,
)
from aisystem.selectors import access_rules_enabled, identity_usage_today
from aisystem.services.access import AccessSubject
from aisystem.services.leases import LeaseRole, lease_fields
from aisystem.services.rate_limits import (
    chat_counter_key,
    identity_counter_key,
    rate_limit_hit,
    rate_notice_first,
)
from pipeline.config_cache import CONFIG
from pipeline.context_builder import describe_media
from pipeline.conversations import context_build
from pipeline.security_gate import BudgetCheck, RateCheck, SecurityGate
from pipeline.step_events import context_event, gate_event, received_event
from pipeline.text_safety import inbound_safe
from pipeline.type_router import classify
from pipeline.types import (
    AccessDecision,
    InboundMessage,
    MessageContext,
)

_Keyed = TypeVar("_Keyed", Identity, Chat)


@dataclass(frozen=True)
class Admission:
    """What steps 1 and 2 concluded. ``context`` is set only when ``decision.allowed``;
    ``notice`` is the reply a rejected sender gets now ("" means silence)."""

    decision: AccessDecision
    message_pk: int | None = None
    chat_pk: int | None = None
    identity_pk: int | None = None
    context: MessageContext | None = None
    notice: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Participants:
    """Who sent a message, and where."""

    identity: Identity
    chat: Chat


def admit(message: InboundMessage, *, gate: SecurityGate, now: datetime) -> Admission:
    """Steps 1 and 2 for one message; records it and every decision for audit. Strings no
    database can store (a lone surrogate, NUL) are replaced first, whatever the transport."""
    started = time.perf_counter()
    message = inbound_safe(message)
    screened = gate.screen(message, now=now)
    if screened is not None and screened.ignored:
        return Admission(decision=screened, timings_ms={"gate": _ms(started)})
    with transaction.atomic():
        people = participants_upsert(message, now=now)
        inbound = _inbound_record(message, people, now=now)
        if inbound is None:
            return Admission(decision=gate.duplicate(), timings_ms={"gate": _ms(started)})
        decision = screened or _decide(message, people, gate=gate, now=now)
        gate_ms = _ms(started)
        events = [received_event(message, inbound), gate_event(decision)]
        if not decision.allowed:
            return _reject(message, people, inbound, decision, events, gate_ms, now=now)
        context_started = time.perf_counter()
        context = context_build(message, people.identity, people.chat, inbound)
        events.append(context_event(context))
        events_record(
            events, transport=message.transport, chat_id=people.chat.pk, message_id=inbound.pk
        )
    return Admission(
        decision=decision,
        message_pk=inbound.pk,
        chat_pk=people.chat.pk,
        identity_pk=people.identity.pk,
        context=context,
        timings_ms={"gate": gate_ms, "context": _ms(context_started)},
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


# --- Participants and the inbound record ---------------------------------------------------


def participants_upsert(message: InboundMessage, *, now: datetime) -> Participants:
    """The message's sender and chat, created or brought up to date (name, title, type)."""
    identity = _by_transport_id(Identity, message.transport, message.sender_id)
    created = False
    if identity is None:  # a new sender; get_or_create settles a race with another process
        identity, created = _identity_create(message, now=now)
    if not created:
        _identity_refresh(identity, message, now=now)
    chat = _by_transport_id(Chat, message.transport, message.chat_id)
    created = False
    if chat is None:
        chat, created = Chat.objects.get_or_create(
            transport=message.transport,
            external_id=message.chat_id,
            defaults={"chat_type": message.chat_type, "title": message.chat_title},
        )
    if not created and (chat.title != message.chat_title or chat.chat_type != message.chat_type):
        chat.title, chat.chat_type = message.chat_title, message.chat_type
        chat.save(update_fields=["title", "chat_type"])
    return Participants(identity=identity, chat=chat)


def _by_transport_id(model: type[_Keyed], transport: str, external_id: str) -> _Keyed | None:
    """The row with this (transport, external_id), its unique key, or None. Read with
    ``Manager.raw``: every message reads its sender and its chat, and composing the ORM's
    ``get()`` took three times the CPU of this read. The names come from the model."""
    quote = connection.ops.quote_name
    table, transport_column, id_column = (
        quote(name)
        for name in (
            model._meta.db_table,
            model._meta.get_field("transport").column or "",
            model._meta.get_field("external_id").column or "",
        )
    )
    sql = f"SELECT * FROM {table} WHERE {transport_column} = %s AND {id_column} = %s"  # noqa: S608
    found = list(model._default_manager.raw(sql, [transport, external_id]))
    return found[0] if found else None


def _identity_create(message: InboundMessage, *, now: datetime) -> tuple[Identity, bool]:
    return Identity.objects.get_or_create(
        transport=message.transport,
        external_id=message.sender_id,
        defaults={
            "username": message.sender_username,
            "display_name": message.sender_name,
            "user_id": message.user_id,
            "role": Role.MEMBER if message.user_id else Role.GUEST,
            "first_seen_at": now,
            "last_seen_at": now,
        },
    )


def _identity_refresh(identity: Identity, message: InboundMessage, *, now: datetime) -> None:
    """Keep names current; touch ``last_seen_at`` at most once a minute (it is hot)."""
    changed = []
    if message.sender_username != identity.username:
        identity.username = message.sender_username
        changed.append("username")
    if message.sender_name and message.sender_name != identity.display_name:
        identity.display_name = message.sender_name
        changed.append("display_name")
    if (now - identity.last_seen_at).total_seconds() > 60:
        identity.last_seen_at = now
        changed.append("last_seen_at")
    if changed:
        identity.save(update_fields=changed)


def _inbound_record(
    message: InboundMessage, people: Participants, *, now: datetime
) -> Message | None:
    """The stored inbound message, or None if this dedup key was seen before. A message
    interrupted by a shutdown is the exception: it is taken up again (once: the claim is a
    conditional UPDATE, so two deliveries of it cannot both resume it)."""
    kind = classify(message)[1]
    try:
        with transaction.atomic():
            return Message.objects.create(
                transport=message.transport,
                chat=people.chat,
                transport_message_id=message.message_id,
                direction=Direction.INBOUND,
                identity=people.identity,
                kind=kind,
                is_edited=message.is_edited,
                is_forwarded=message.is_forwarded,
                status=MessageStatus.PROCESSING,
                text=message.text or describe_media(message),
                sent_at=message.sent_at,
                created_at=now,
                **lease_fields(_role(message), now),
            )
    except IntegrityError:
        pass
    same_key = Message.objects.filter(
        transport=message.transport,
        chat=people.chat,
        transport_message_id=message.message_id,
        direction=Direction.INBOUND,
    )
    if not same_key.filter(status=MessageStatus.INTERRUPTED).update(
        status=MessageStatus.PROCESSING,
        status_reason="resumed",
        **lease_fields(_role(message), now),
    ):
        return None
    return same_key.get()


def _role(message: InboundMessage) -> LeaseRole:
    """Who processes it: the Telegram bridge, or a web process (browser chat, REST)."""
    return "bridge" if message.transport == "telegram" else "web"


# --- The gate's facts ----------------------------------------------------------------------


def _decide(
    message: InboundMessage, people: Participants, *, gate: SecurityGate, now: datetime
) -> AccessDecision:
    subject = AccessSubject(
        transport=message.transport,
        identity_id=people.identity.pk,
        username=people.identity.username,
        chat_id=people.chat.pk,
        chat_type=people.chat.chat_type,
        role=people.identity.role,
        api_token_id=message.api_token_id,
        is_blocked=people.identity.is_blocked,
    )
    decision = gate.validate_access(subject, CONFIG.get("rules", access_rules_enabled))
    if not decision.allowed:
        return decision
    personal, chat_policy = _policies(people)
    limited = gate.check_rate(_rate_checks(people, personal, chat_policy, now=now))
    if limited is not None:
        return limited
    return _budget_check(gate, people, personal, now=now) or decision


def _budget_check(
    gate: SecurityGate, people: Participants, personal: RateLimitPolicy | None, *, now: datetime
) -> AccessDecision | None:
    """The refusal once today's usage has reached the person's daily budget, else None."""
    if personal is None or (
        personal.daily_token_budget is None and personal.daily_cost_budget is None
    ):
        return None
    usage = identity_usage_today(identity_id=people.identity.pk, now=now)
    budget = BudgetCheck(
        tokens_used=usage.tokens,
        cost_used=usage.cost_usd,
        token_budget=personal.daily_token_budget,
        cost_budget=personal.daily_cost_budget,
    )
    return gate.check_budget(budget)


def scheduled_prompt_refusal(
    *, identity_id: int, chat_pk: int, gate: SecurityGate, now: datetime
) -> AccessDecision | None:
    """The gate's refusal of a scheduled prompt about to be answered for this person in this
    chat, or None: their daily budgets apply as to a message they send, since a prompt costs
    what a message costs. The access rules were applied when they scheduled it (and a blocked
    person's reminders are cancelled when claimed); the rate limits do not apply, as the
    schedule, not the person, sends it, once per occurrence."""
    people = Participants(
        identity=Identity.objects.get(pk=identity_id), chat=Chat.objects.get(pk=chat_pk)
    )
    return _budget_check(gate, people, _policies(people)[0], now=now)


def _policies(people: Participants) -> tuple[RateLimitPolicy | None, RateLimitPolicy | None]:
    """The identity's own policy (else its role's), and the chat's. Disabled ones don't count."""
    policies = CONFIG.get("policies", _policies_load)
    own = policies.get(("identity", people.identity.pk))
    role = policies.get(("role", people.identity.role))
    chat = policies.get(("chat", people.chat.pk))
    return own or role, chat


def _policies_load() -> dict[tuple[str, object], RateLimitPolicy]:
    """Every enabled policy by its target: ("identity", id), ("role", name), ("chat", id)."""
    by_target: dict[tuple[str, object], RateLimitPolicy] = {}
    for policy in RateLimitPolicy.objects.filter(enabled=True):
        if policy.identity_id is not None:
            by_target["identity", policy.identity_id] = policy
        elif policy.chat_id is not None:
            by_target["chat", policy.chat_id] = policy
        else:
            by_target["role", policy.role] = policy
    return by_target


def _rate_checks(
    people: Participants,
    personal: RateLimitPolicy | None,
    chat_policy: RateLimitPolicy | None,
    *,
    now: datetime,
) -> list[RateCheck]:
    checks = []
    targets = [
        ("identity", identity_counter_key(people.identity.pk), personal),
        ("chat", chat_counter_key(people.chat.pk), chat_policy),
    ]
    for scope, key, policy in targets:
        if policy is None or policy.messages_per_window is None:
            continue
        result = rate_limit_hit(
            key=key, limit=policy.messages_per_window, window_seconds=policy.window_seconds, now=now
        )
        checks.append(RateCheck(scope, result.allowed, result.retry_after_seconds, result.reset_at))
    return checks


def _reject(
    message: InboundMessage,
    people: Participants,
    inbound: Message,
    decision: AccessDecision,
    events: list[PendingEvent],
    gate_ms: float,
    *,
    now: datetime,
) -> Admission:
    """Record the rejection; the notice goes out at most once per window per sender."""
    notice = decision.notice
    key = f"notice:{people.identity.pk}:{decision.reason}"
    if notice and decision.blocked_until is not None:
        # Once per exceeded window, however the messages fall on the clock.
        notice = notice if rate_notice_first(key=key, until=decision.blocked_until) else ""
    elif notice:
        window = settings.PIPELINE["DENIAL_NOTICE_WINDOW_SECONDS"]
        first = rate_limit_hit(key=key, limit=1, window_seconds=window, now=now)
        notice = notice if first.allowed else ""
    Message.objects.filter(pk=inbound.pk).update(
        status=MessageStatus.REJECTED, status_reason=decision.reason
    )
    events_record(
        events, transport=message.transport, chat_id=people.chat.pk, message_id=inbound.pk
    )
    message_observe_on_commit(
        transport=message.transport, status=MessageStatus.REJECTED, timings_ms={"gate": gate_ms}
    )
    return Admission(
        decision=decision,
        message_pk=inbound.pk,
        chat_pk=people.chat.pk,
        identity_pk=people.identity.pk,
        notice=notice,
        timings_ms={"gate": gate_ms},
    )
