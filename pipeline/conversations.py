"""Step 2's database side: the workspace, the conversation and its history.

Called inside ``store.admit``'s transaction (and by the deferred-answer job); the pure parts
(mention stripping, history trimming, media descriptions) are in ``context_builder``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.db.models.options import Options

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
from aisystem.services.conversations import workspace_default_ensure
from pipeline.config_cache import CONFIG
from pipeline.context_builder import describe_media, reply_context, strip_mention, trim_history
from pipeline.types import HistoryTurn, InboundMessage, MessageContext, WorkspaceInfo

# Default workspaces this process made (or found) inside a transaction not yet committed: not
# to be kept in the per-process copy, which other threads read, until the commit.
_UNCOMMITTED: set[int] = set()


def workspace_default() -> Workspace:
    """The default workspace, made by the first message that finds none, so a fresh install
    answers at once. A row made (or found) inside a transaction is kept out of the
    per-process copy until that transaction commits: another thread of this process using
    it before then would fail on a row it cannot see (PostgreSQL refused those messages'
    conversations with a foreign-key error while two web processes started)."""
    found = CONFIG.get("default_workspace", _workspace_default_committed)
    if found is not None:
        return found
    workspace = workspace_default_ensure()
    if connection.in_atomic_block:
        pk = workspace.pk
        _UNCOMMITTED.add(pk)
        transaction.on_commit(lambda: _UNCOMMITTED.discard(pk))
    return workspace


def _workspace_default_committed() -> Workspace | None:
    workspace = Workspace.objects.filter(is_default=True).first()
    return None if workspace is None or workspace.pk in _UNCOMMITTED else workspace


def workspace_for_chat(chat: Chat) -> Workspace:
    """The staff binding, then the chat's /workspace choice, then the default."""
    for candidate in (chat.workspace, chat.selected_workspace):
        if candidate is not None and candidate.is_active:
            return candidate
    return workspace_default()


def conversation_active_id(chat: Chat, workspace: Workspace, identity: Identity) -> int:
    """The pk of the chat's conversation with the workspace, started if there is none. (At
    most one is active: a unique constraint says so, hence no ordering and no model.)"""
    active = {"chat": chat, "workspace": workspace, "ended_at__isnull": True}
    found = Conversation.objects.filter(**active).values_list("pk", flat=True)[:1]
    if found:
        return int(found[0])
    try:
        with transaction.atomic():
            started = Conversation.objects.create(
                chat=chat, workspace=workspace, started_by=identity
            )
            return int(started.pk)
    except IntegrityError:  # a concurrent message started it
        return int(Conversation.objects.filter(**active).values_list("pk", flat=True).get())


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
    conversation_id, turns = _conversation_history(
        chat, workspace, identity, before_pk=inbound.pk, limit=workspace.history_max_messages
    )
    history, dropped = trim_history(
        turns,
        max_messages=workspace.history_max_messages,
        max_tokens=workspace.history_max_tokens,
    )
    return MessageContext(
        message_pk=inbound.pk,
        identity_id=identity.pk,
        chat_pk=chat.pk,
        conversation_id=conversation_id,
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


def _conversation_history(
    chat: Chat, workspace: Workspace, identity: Identity, *, before_pk: int, limit: int
) -> tuple[int, list[HistoryTurn]]:
    """The active conversation's pk and its latest ``limit`` answered exchanges before this
    message, oldest first: replies, and inbound messages that were answered, neither empty nor
    a command. The turns are read through the conversation, so in a conversation that has any
    (most messages) one query gives both; else the conversation is looked up (or started).

    "Before" is by the question: a reply counts when the message it answers is older than this
    one, wherever its own pk falls. Messages stored together at a bridge's stop are answered
    in order after the restart, so their replies get pks above the later questions; each of
    those still sees the earlier questions with their answers, in question order."""
    with connection.cursor() as cursor:
        cursor.execute(
            _history_sql(connection.vendor, connection.ops.quote_name),
            [
                chat.pk,
                workspace.pk,
                before_pk,
                MessageKind.COMMAND.value,
                Direction.OUTBOUND.value,
                Direction.INBOUND.value,
                MessageStatus.ANSWERED.value,
                limit,
            ],
        )
        rows = cursor.fetchall()
    if not rows:
        return conversation_active_id(chat, workspace, identity), []
    rows.sort(key=lambda row: (row[3], row[4]))  # by exchange (the question's pk), then pk
    turns = [
        HistoryTurn(role="user" if direction == Direction.INBOUND else "assistant", text=text)
        for _, direction, text, _, _ in rows
    ]
    return int(rows[0][0]), turns


_HISTORY_SQL: dict[str, str] = {}


def _history_sql(vendor: str, quote: Callable[[str], str]) -> str:
    """The history query in SQL, as the ORM would write it but without building it for every
    message: on this hot path the ORM spent ten times as long composing the query as SQLite
    took to run it. Plain SQL that SQLite and PostgreSQL both read; the names come from the
    models. (Equivalent: ``Message.objects.filter(Q(direction=OUTBOUND) | Q(direction=INBOUND,
    status=ANSWERED), ~Q(text=""), ~Q(kind=COMMAND), conversation__chat=chat,
    conversation__workspace=workspace, conversation__ended_at__isnull=True)
    .alias(question=Coalesce("reply_to_id", "pk")).filter(question__lt=before)
    .order_by("-pk").values_list("conversation_id", "direction", "text", "question", "pk")
    [:limit]``.)"""
    sql = _HISTORY_SQL.get(vendor)
    if sql is None:
        sql = _HISTORY_SQL[vendor] = _history_sql_write(quote)
    return sql


def _history_sql_write(quote: Callable[[str], str]) -> str:
    message, conversation = Message._meta, Conversation._meta

    def column(model: Options[Any], name: str) -> str:
        field = model.get_field(name)
        if not isinstance(field, Field) or not field.column:
            raise TypeError(f"{model.label}.{name} is not a column")
        return f"{quote(model.db_table)}.{quote(field.column)}"

    m = functools.partial(column, message)
    c = functools.partial(column, conversation)
    # Names from the models, every value a bound parameter: nothing here comes from a user.
    return (
        f"SELECT {m('conversation')}, {m('direction')}, {m('text')},"  # noqa: S608
        f" COALESCE({m('reply_to')}, {m('id')}), {m('id')}"
        f" FROM {quote(message.db_table)} INNER JOIN {quote(conversation.db_table)}"
        f" ON {m('conversation')} = {c('id')}"
        f" WHERE {c('chat')} = %s AND {c('workspace')} = %s AND {c('ended_at')} IS NULL"
        f" AND COALESCE({m('reply_to')}, {m('id')}) < %s"
        f" AND {m('text')} <> '' AND {m('kind')} <> %s"
        f" AND ({m('direction')} = %s OR ({m('direction')} = %s AND {m('status')} = %s))"
        f" ORDER BY {m('id')} DESC LIMIT %s"
    )
