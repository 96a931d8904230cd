"""Step 2's database side: the workspace, the conversation and its history.

Called inside ``store.admit``'s transaction (and by the deferred-answer job); the pure parts
(mention stripping, history trimming, media descriptions) are in ``context_builder``.
"""

from __future__ import annotations

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
    Workspace,
)
from pipeline.config_cache import CONFIG
from pipeline.context_builder import describe_media, reply_context, strip_mention, trim_history
from pipeline.types import HistoryTurn, InboundMessage, MessageContext, WorkspaceInfo

DEFAULT_WORKSPACE_SLUG = "assistant"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, concise assistant. Answer in the language the user writes in."
)


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
    return message, context_build(message, identity, row.chat, row)


def context_build(
    message: InboundMessage, identity: Identity, chat: Chat, inbound: Message
) -> MessageContext:
    """Step 2 for a stored inbound message: workspace, conversation, history and the rest."""
    workspace = workspace_for_chat(chat)
    conversation = conversation_active(chat, workspace, identity)
    turns = _history(conversation, before_pk=inbound.pk, limit=workspace.history_max_messages)
    history, dropped = trim_history(
        turns,
        max_messages=workspace.history_max_messages,
        max_tokens=workspace.history_max_tokens,
    )
    return MessageContext(
        message_pk=inbound.pk,
        identity_id=identity.pk,
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
        identity_role=identity.role,
        sender_name=identity.display_name or identity.username,
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
