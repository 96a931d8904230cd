"""Reads for the browser chat: its workspace, the current conversation (with the changes
still waiting for a decision) and the signed-in user's connections, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Literal

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.utils import timezone

from aisystem.integrations.registry import providers_configured
from aisystem.models import (
    Chat,
    Conversation,
    Direction,
    IntegrationAccount,
    Message,
    MessageStatus,
    PendingAction,
    PendingActionStatus,
    Transport,
)
from pipeline.conversations import workspace_default, workspace_for_chat

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class WorkspaceView:
    slug: str
    name: str


@dataclass(frozen=True)
class HistoryEntry:
    """One bubble. ``pending_action_id`` is set on an answer whose proposed change still
    waits (unexpired) for a decision, so a reloaded page shows its buttons again."""

    role: Literal["user", "assistant"]
    text: str
    status: str  # the stored MessageStatus
    pending_action_id: int | None = None


@dataclass(frozen=True)
class AccountView:
    """A connected account as its owner may see it: never a token."""

    id: int
    login: str
    status: str  # IntegrationStatus: connected, needs_reconnect


@dataclass(frozen=True)
class ConnectionView:
    """One provider staff configured, and the person's account there (None: not connected)."""

    provider: str
    label: str
    account: AccountView | None


@dataclass(frozen=True)
class ChatSnapshot:
    """What a page shows when it (re)connects."""

    workspace: WorkspaceView
    history: list[HistoryEntry]


def chat_session_valid(*, user_id: int, session_key: str | None) -> bool:
    """True while the session the socket opened with still signs in this active user: False
    once they signed out (the session is gone) or staff deactivated the account."""
    if not session_key:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if session.get(SESSION_KEY) != str(user_id):
        return False
    return get_user_model()._default_manager.filter(pk=user_id, is_active=True).exists()


def _chat(chat_external_id: str) -> Chat | None:
    return (
        Chat.objects.select_related("workspace", "selected_workspace")
        .filter(transport=Transport.WEB, external_id=chat_external_id)
        .first()
    )


def chat_workspace(*, chat_external_id: str) -> WorkspaceView:
    """The workspace the chat's next message will use (the pipeline's own choice: binding,
    then /workspace, then the default, which is created on first use)."""
    chat = _chat(chat_external_id)
    workspace = workspace_for_chat(chat) if chat is not None else workspace_default()
    return WorkspaceView(slug=workspace.slug, name=workspace.name)


def chat_snapshot(*, chat_external_id: str, limit: int = HISTORY_LIMIT) -> ChatSnapshot:
    """The workspace and the latest ``limit`` messages of its active conversation, oldest
    first. Replies still waiting in the outbox are left out: they are sent as they are taken
    (``services.web_outbox_take``), so none is shown twice."""
    chat = _chat(chat_external_id)
    if chat is None:
        workspace = workspace_default()
        return ChatSnapshot(WorkspaceView(workspace.slug, workspace.name), history=[])
    workspace = workspace_for_chat(chat)
    conversation = Conversation.objects.filter(
        chat=chat, workspace=workspace, ended_at__isnull=True
    ).first()
    history: list[HistoryEntry] = []
    if conversation is not None:
        rows = list(
            Message.objects.filter(conversation=conversation)
            .exclude(text="")
            .exclude(direction=Direction.OUTBOUND, status=MessageStatus.PROCESSING)
            .order_by("-pk")
            .values_list("direction", "text", "status", "reply_to_id")[:limit]
        )
        rows.reverse()
        waiting = _waiting_actions(chat, [reply_to for *_, reply_to in rows if reply_to])
        history = [
            HistoryEntry(
                role="user" if direction == Direction.INBOUND else "assistant",
                text=text,
                status=status,
                pending_action_id=waiting.get(reply_to)
                if direction == Direction.OUTBOUND
                else None,
            )
            for direction, text, status, reply_to in rows
        ]
    return ChatSnapshot(WorkspaceView(workspace.slug, workspace.name), history=history)


def _waiting_actions(chat: Chat, message_ids: list[int]) -> dict[int, int]:
    """inbound message id -> the change its answer proposed, for those still waiting."""
    if not message_ids:
        return {}
    rows = PendingAction.objects.filter(
        chat=chat,
        message_id__in=message_ids,
        status=PendingActionStatus.PENDING,
        expires_at__gt=timezone.now(),
    ).values_list("message_id", "pk")
    return {message_id: pk for message_id, pk in rows}


def chat_connections(*, user_id: int) -> list[ConnectionView]:
    """The configured providers, in the registry's order, each with ``user_id``'s own
    account there (the newest, should there be several); [] when none is configured."""
    configured = providers_configured()
    if not configured:
        return []
    accounts = {
        account.provider: account
        for account in IntegrationAccount.objects.filter(
            user_id=user_id, provider__in=[provider.name for provider in configured]
        ).order_by("pk")
    }
    views = []
    for provider in configured:
        account = accounts.get(provider.name)
        shown = None
        if account is not None:
            shown = AccountView(
                id=account.pk, login=account.login or account.uid, status=account.status
            )
        views.append(ConnectionView(provider=provider.name, label=provider.label, account=shown))
    return views
