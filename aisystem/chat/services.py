"""Writes for the browser chat: handing over replies that waited in the outbox; the
Confirm/Cancel buttons; connecting and disconnecting the signed-in user's accounts.

A message answered later (it was deferred while Claude was unavailable) gets its reply
through the outbox, as on Telegram. A browser is only reachable while its page is open, so
the page's connection takes the chat's pending items itself, on connect and every few
seconds (``consumers.OUTBOX_POLL_SECONDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connections, transaction

from aisystem.integrations.accounts import account_disconnect
from aisystem.integrations.links import connect_link_create
from aisystem.integrations.registry import PROVIDERS, provider_get
from aisystem.models import (
    Chat,
    ChatType,
    Direction,
    Identity,
    IntegrationAccount,
    Message,
    MessageStatus,
    OutboxItem,
    PendingAction,
    PendingActionStatus,
    Role,
    Transport,
)
from pipeline.tools import Decision, pending_action_decide

# Identity ids start at 1: a user who never chatted matches no request, so
# ``pending_action_decide`` refuses them in its own words.
NOBODY = 0


def chat_external_id(user_id: int) -> str:
    """The one web chat of a user: every page and device of theirs is this chat."""
    return f"user-{user_id}"


@dataclass(frozen=True)
class OutboxReply:
    item_id: int
    text: str
    reply_to: str  # the client id of the message it answers


def web_outbox_take(*, chat_external_id: str, now: datetime, limit: int = 20) -> list[OutboxReply]:
    """The chat's pending replies, oldest first, marked sent (and their stored replies
    delivered). Each is taken with a conditional UPDATE, so two open tabs never both get
    one. Marked before the socket write: should that write fail, the reply is still in the
    conversation the page loads on reconnect, rather than sent twice."""
    with transaction.atomic():
        rows = list(
            OutboxItem.objects.filter(
                transport=Transport.WEB,
                chat__transport=Transport.WEB,
                chat__external_id=chat_external_id,
                status=OutboxItem.Status.PENDING,
                available_at__lte=now,
            )
            .order_by("pk")
            .values_list("pk", "chat_id", "text", "reply_to_transport_message_id")[:limit]
        )
        taken: list[OutboxReply] = []
        for pk, _chat_pk, text, reply_to in rows:
            claimed = OutboxItem.objects.filter(pk=pk, status=OutboxItem.Status.PENDING).update(
                status=OutboxItem.Status.SENT, sent_at=now, sent_transport_message_id=f"web-{pk}"
            )
            if claimed:
                taken.append(OutboxReply(item_id=pk, text=text, reply_to=reply_to))
        if taken:
            # The deferred-answer job stores the reply as "outbox-<item id>", processing.
            Message.objects.filter(
                chat_id=rows[0][1],
                direction=Direction.OUTBOUND,
                status=MessageStatus.PROCESSING,
                transport_message_id__in=[f"outbox-{reply.item_id}" for reply in taken],
            ).update(status=MessageStatus.DELIVERED, status_reason="", sent_at=now)
    return taken


# --- Confirm/Cancel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionOutcome:
    """What a press did: ``text`` is ``pending_action_decide``'s reply; ``settled`` is True
    once the request no longer waits (the page keeps its buttons disabled)."""

    action_id: int
    text: str
    settled: bool


def chat_decide(*, user_id: int, action_id: int, decision: Decision) -> DecisionOutcome:
    """Settle request ``action_id`` as the browser user ``user_id``: ``pending_action_decide``
    alone decides whether they may (someone else's request is refused) and runs a write at
    most once. It may call the provider: run it with ``sync_to_async(...,
    thread_sensitive=False)``; this thread's connections are closed when done, as the
    thread may never be used again."""
    try:
        identity_id = (
            Identity.objects.filter(transport=Transport.WEB, external_id=str(user_id))
            .values_list("pk", flat=True)
            .first()
        ) or NOBODY
        text = pending_action_decide(
            action_id=action_id, identity_id=identity_id, decision=decision
        )
        status = PendingAction.objects.filter(pk=action_id).values_list("status", flat=True).first()
        settled = status != PendingActionStatus.PENDING
        return DecisionOutcome(action_id=action_id, text=text, settled=settled)
    finally:
        connections.close_all()


# --- Connections ------------------------------------------------------------------------------


def web_participant_ensure(*, user_id: int) -> tuple[Identity, Chat]:
    """The user's browser-chat identity and chat, created as the pipeline creates them at a
    first message (a connect link needs an identity, and the chat is told when the account
    is connected), for a user who connects before chatting."""
    user = get_user_model()._default_manager.get(pk=user_id)
    username = user.get_username()
    name = user.get_full_name().strip() or username
    identity, _ = Identity.objects.get_or_create(
        transport=Transport.WEB,
        external_id=str(user_id),
        defaults={
            "username": username,
            "display_name": name,
            "user_id": user_id,
            "role": Role.MEMBER,
        },
    )
    chat, _ = Chat.objects.get_or_create(
        transport=Transport.WEB,
        external_id=chat_external_id(user_id),
        defaults={"chat_type": ChatType.WEB, "title": f"{username} (browser)"},
    )
    return identity, chat


def chat_connect_link(*, user_id: int, provider: str) -> str | None:
    """A fresh one-time link for ``user_id`` to connect ``provider`` (None when staff have
    not configured it); the browser chat is told once it is connected."""
    configured = provider_get(provider)
    if configured is None:
        return None
    identity, chat = web_participant_ensure(user_id=user_id)
    return connect_link_create(identity_id=identity.pk, chat_id=chat.pk, provider=configured.name)


def chat_disconnect(*, user_id: int, provider: str) -> str:
    """Revoke and remove ``user_id``'s own account at ``provider``; the words to show. Only
    their accounts are looked at, so no request can reach someone else's."""
    known = PROVIDERS.get(provider)
    label = known.label if known is not None else "that provider"
    account = (
        IntegrationAccount.objects.filter(user_id=user_id, provider=provider)
        .order_by("-pk")
        .first()
    )
    if account is None:
        return f"You have no {label} account connected."
    who = account.login or account.uid
    outcome = account_disconnect(account_id=account.pk)
    if outcome.revoked:
        return f"Disconnected {label} ({who}): access revoked at {label} and removed here."
    return (
        f"Removed your {label} account ({who}) here, but {label} could not confirm that the "
        f"access is revoked ({outcome.detail}). You can revoke it in your {label} settings too."
    )
