"""Reads for the browser chat: its workspace and the current conversation, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Literal

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model

from aisystem.models import Chat, Conversation, Direction, Message, MessageStatus, Transport
from pipeline.conversations import workspace_default, workspace_for_chat

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class WorkspaceView:
    slug: str
    name: str


@dataclass(frozen=True)
class HistoryEntry:
    role: Literal["user", "assistant"]
    text: str
    status: str  # the stored MessageStatus


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
            .values_list("direction", "text", "status")[:limit]
        )
        rows.reverse()
        history = [
            HistoryEntry(
                role="user" if direction == Direction.INBOUND else "assistant",
                text=text,
                status=status,
            )
            for direction, text, status in rows
        ]
    return ChatSnapshot(WorkspaceView(workspace.slug, workspace.name), history=history)
