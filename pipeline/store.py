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

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from aisystem.models import (
    Chat,
    Conversation,
    Direction,
    Identity,
    Message,
    MessageKind,
    MessageStatus,
    RateLimitPolicy,
    Role,
    Workspace,
)
from aisystem.selectors import access_rules_enabled, identity_usage_today
from aisystem.services.access import AccessSubject
from aisystem.services.rate_limits import chat_counter_key, identity_counter_key, rate_limit_hit
from pipeline.config_cache import CONFIG
from pipeline.context_builder import describe_media, reply_context, strip_mention, trim_history
from pipeline.events import PendingEvent, events_record, preview
from pipeline.security_gate import BudgetCheck, RateCheck, SecurityGate
from pipeline.type_router import classify
from pipeline.types import (
    AccessDecision,
    HistoryTurn,
    InboundMessage,
    MessageContext,
    WorkspaceInfo,
)

DEFAULT_WORKSPACE_SLUG = "assistant"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, concise assistant. Answer in the language the user writes in."
)


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
class _Participants:
    identity: Identity
    chat: Chat


def admit(message: InboundMessage, *, gate: SecurityGate, now: datetime) -> Admission:
    """Steps 1 and 2 for one message; records it and every decision for audit."""
    started = time.perf_counter()
    screened = gate.screen(message, now=now)
    if screened is not None and screened.ignored:
        return Admission(decision=screened, timings_ms={"gate": _ms(started)})
    with transaction.atomic():
        people = _participants_upsert(message, now=now)
        inbound = _inbound_record(message, people, now=now)
        if inbound is None:
            return Admission(decision=gate.duplicate(), timings_ms={"gate": _ms(started)})
        decision = screened or _decide(message, people, gate=gate, now=now)
        gate_ms = _ms(started)
        events = [_received_event(message, inbound), _gate_event(decision)]
        if not decision.allowed:
            return _reject(message, people, inbound, decision, events, gate_ms, now=now)
        context_started = time.perf_counter()
        context = _context_build(message, people, inbound)
        events.append(_context_event(context))
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


def _participants_upsert(message: InboundMessage, *, now: datetime) -> _Participants:
    identity, created = Identity.objects.get_or_create(
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
    if not created:
        _identity_refresh(identity, message, now=now)
    chat, created = Chat.objects.get_or_create(
        transport=message.transport,
        external_id=message.chat_id,
        defaults={"chat_type": message.chat_type, "title": message.chat_title},
    )
    if not created and (chat.title != message.chat_title or chat.chat_type != message.chat_type):
        chat.title, chat.chat_type = message.chat_title, message.chat_type
        chat.save(update_fields=["title", "chat_type"])
    return _Participants(identity=identity, chat=chat)


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
    message: InboundMessage, people: _Participants, *, now: datetime
) -> Message | None:
    """The stored inbound message, or None if this dedup key was seen before."""
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
            )
    except IntegrityError:
        return None


# --- The gate's facts ----------------------------------------------------------------------


def _decide(
    message: InboundMessage, people: _Participants, *, gate: SecurityGate, now: datetime
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
    if personal is not None and (
        personal.daily_token_budget is not None or personal.daily_cost_budget is not None
    ):
        usage = identity_usage_today(identity_id=people.identity.pk, now=now)
        budget = BudgetCheck(
            tokens_used=usage.tokens,
            cost_used=usage.cost_usd,
            token_budget=personal.daily_token_budget,
            cost_budget=personal.daily_cost_budget,
        )
        return gate.check_budget(budget) or decision
    return decision


def _policies(people: _Participants) -> tuple[RateLimitPolicy | None, RateLimitPolicy | None]:
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
    people: _Participants,
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
        checks.append(RateCheck(scope, result.allowed, result.retry_after_seconds))
    return checks


def _reject(
    message: InboundMessage,
    people: _Participants,
    inbound: Message,
    decision: AccessDecision,
    events: list[PendingEvent],
    gate_ms: float,
    *,
    now: datetime,
) -> Admission:
    """Record the rejection; the notice goes out at most once per window per sender."""
    notice = decision.notice
    if notice:
        window = settings.PIPELINE["DENIAL_NOTICE_WINDOW_SECONDS"]
        if decision.reason in ("rate_limited", "chat_rate_limited"):
            window = max(1, min(window, decision.retry_after_seconds or window))
        first = rate_limit_hit(
            key=f"notice:{people.identity.pk}:{decision.reason}",
            limit=1,
            window_seconds=window,
            now=now,
        )
        notice = notice if first.allowed else ""
    Message.objects.filter(pk=inbound.pk).update(
        status=MessageStatus.REJECTED, status_reason=decision.reason
    )
    events_record(
        events, transport=message.transport, chat_id=people.chat.pk, message_id=inbound.pk
    )
    return Admission(
        decision=decision,
        message_pk=inbound.pk,
        chat_pk=people.chat.pk,
        identity_pk=people.identity.pk,
        notice=notice,
        timings_ms={"gate": gate_ms},
    )


# --- Step 2: context ------------------------------------------------------------------------


def workspace_default() -> Workspace:
    """The default workspace, created on first use so a fresh install answers at once."""
    return CONFIG.get("default_workspace", _workspace_default_load)


def _workspace_default_load() -> Workspace:
    workspace = Workspace.objects.filter(is_default=True).first()
    if workspace is not None:
        return workspace
    try:
        with transaction.atomic():
            workspace, _ = Workspace.objects.update_or_create(
                slug=DEFAULT_WORKSPACE_SLUG,
                defaults={"is_default": True, "is_active": True},
                create_defaults={
                    "name": "Assistant",
                    "system_prompt": DEFAULT_SYSTEM_PROMPT,
                    "is_default": True,
                },
            )
    except IntegrityError:  # another process made one the default first
        workspace = Workspace.objects.get(is_default=True)
    return workspace


def workspace_for_chat(chat: Chat) -> Workspace:
    """The staff binding, then the chat's /workspace choice, then the default."""
    for candidate in (chat.workspace, chat.selected_workspace):
        if candidate is not None and candidate.is_active:
            return candidate
    return workspace_default()


def conversation_active(chat: Chat, workspace: Workspace, identity: Identity) -> Conversation:
    conversation = Conversation.objects.filter(
        chat=chat, workspace=workspace, ended_at__isnull=True
    ).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(chat=chat, workspace=workspace, started_by=identity)
    except IntegrityError:  # a concurrent message started it
        return Conversation.objects.get(chat=chat, workspace=workspace, ended_at__isnull=True)


def context_for_stored(row: Message, identity: Identity) -> tuple[InboundMessage, MessageContext]:
    """An already stored inbound message and its context (deferred answers): its text is
    what was stored, attachments are gone, the conversation is the chat's current one. It is
    marked catch-up: it is old by design."""
    message = InboundMessage(
        transport=row.transport,
        chat_id=row.chat.external_id,
        chat_type=row.chat.chat_type,
        message_id=row.transport_message_id,
        sender_id=identity.external_id,
        sender_username=identity.username,
        sender_name=identity.display_name,
        chat_title=row.chat.title,
        sent_at=row.sent_at or row.created_at,
        text=row.text,
        is_catch_up=True,
    )
    people = _Participants(identity=identity, chat=row.chat)
    return message, _context_build(message, people, row)


def _context_build(
    message: InboundMessage, people: _Participants, inbound: Message
) -> MessageContext:
    chat = people.chat
    workspace = workspace_for_chat(chat)
    conversation = conversation_active(chat, workspace, people.identity)
    Message.objects.filter(pk=inbound.pk).update(conversation=conversation)
    turns = _history(conversation, before_pk=inbound.pk, limit=workspace.history_max_messages)
    history, dropped = trim_history(
        turns,
        max_messages=workspace.history_max_messages,
        max_tokens=workspace.history_max_tokens,
    )
    return MessageContext(
        message_pk=inbound.pk,
        identity_id=people.identity.pk,
        chat_pk=chat.pk,
        conversation_id=conversation.pk,
        workspace=WorkspaceInfo(
            id=workspace.pk,
            slug=workspace.slug,
            name=workspace.name,
            system_prompt=workspace.system_prompt,
            model=workspace.model,
            max_tokens=workspace.max_tokens,
        ),
        text=strip_mention(message.text, message.assistant_username),
        identity_role=people.identity.role,
        sender_name=people.identity.display_name or people.identity.username,
        chat_type=chat.chat_type,
        reply_mode=chat.reply_mode,
        status_reactions=chat.status_reactions,
        history=history,
        history_dropped=dropped,
        reply_context=reply_context(message),
        media_description=describe_media(message),
    )


def _history(conversation: Conversation, *, before_pk: int, limit: int) -> list[HistoryTurn]:
    """The latest ``limit`` answered exchanges before this message, oldest first."""
    rows = list(
        Message.objects.filter(conversation=conversation, pk__lt=before_pk)
        .filter(
            Q(direction=Direction.OUTBOUND)
            | Q(direction=Direction.INBOUND, status=MessageStatus.ANSWERED)
        )
        .exclude(text="")
        .exclude(kind=MessageKind.COMMAND)
        .order_by("-pk")
        .values_list("direction", "text")[:limit]
    )
    rows.reverse()
    return [
        HistoryTurn(role="user" if direction == Direction.INBOUND else "assistant", text=text)
        for direction, text in rows
    ]


# --- Events ---------------------------------------------------------------------------------


def _received_event(message: InboundMessage, inbound: Message) -> PendingEvent:
    who = f"@{message.sender_username}" if message.sender_username else message.sender_name
    return PendingEvent(
        kind="message.received",
        summary=f"{inbound.get_kind_display()} from {who or message.sender_id}",
        data={
            "kind": inbound.kind,
            "text": preview(inbound.text),
            "chat_type": message.chat_type,
            "edited": message.is_edited,
            "catch_up": message.is_catch_up,
        },
    )


def _gate_event(decision: AccessDecision) -> PendingEvent:
    if decision.allowed:
        return PendingEvent(kind="gate.allowed", summary="Allowed", data={"rule": decision.rule_id})
    return PendingEvent(
        kind="gate.denied",
        summary=f"Denied: {decision.reason.replace('_', ' ')}",
        level="warning",
        data={
            "reason": decision.reason,
            "rule": decision.rule_id,
            "notified": bool(decision.notice),
        },
    )


def _context_event(context: MessageContext) -> PendingEvent:
    return PendingEvent(
        kind="context.built",
        summary=f"Workspace {context.workspace.slug}, {len(context.history)} earlier turns",
        data={
            "workspace": context.workspace.slug,
            "history": len(context.history),
            "history_dropped": context.history_dropped,
            "conversation": context.conversation_id,
        },
    )
