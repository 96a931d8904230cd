"""``/export``: everything the assistant keeps about one person, as one JSON document.

What it holds (``EXPORT_FORMAT``): the identity (as the transport knows it, with the time
zone they set), the chats they wrote in, the conversations their messages belong to, their
messages in and the replies to them out (text, status, timestamps, tokens and cost), their
reminders, the changes they were asked to confirm, their connected accounts **without any
token** (provider, login, scopes, status, dates: ``extra_data``, where the tokens live, is
never read here), and their daily usage.

Large histories: the document is capped at ``max_bytes`` (``EXPORT_MAX_BYTES``, 20 MB: under
Telegram's 50 MB for a bot's document, and small enough to hand to a browser or a REST
client in one piece). Messages are read newest first with a server-side iterator, so memory
stays at about the cap however long the history; when they do not all fit, the newest that
do are kept, and ``messages_total`` / ``messages_included`` (and the reply) say so. Everything
else is small (a person has at most a few dozen reminders, accounts and chats) and always
complete.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from aisystem.models import (
    Chat,
    Conversation,
    DailyUsage,
    Identity,
    IntegrationAccount,
    Message,
    PendingAction,
    PersonSettings,
    Reminder,
)

EXPORT_FORMAT = "aisystem-export/1"
EXPORT_MAX_BYTES = 20 * 1024 * 1024
EXPORT_MIME_TYPE = "application/json"
_CHUNK = 1000  # rows per round trip of the message iterator

_MESSAGE_FIELDS = (
    "pk",
    "chat_id",
    "conversation_id",
    "direction",
    "kind",
    "status",
    "text",
    "is_edited",
    "is_forwarded",
    "reply_to_id",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "created_at",
    "sent_at",
)


@dataclass(frozen=True)
class Export:
    """The document (UTF-8 JSON) and what is in it."""

    data: bytes
    file_name: str
    messages_total: int
    messages_included: int
    chats: int
    reminders: int
    accounts: int
    usage_days: int

    @property
    def truncated(self) -> bool:
        return self.messages_included < self.messages_total


def identity_export(
    *, identity_id: int, now: datetime | None = None, max_bytes: int = EXPORT_MAX_BYTES
) -> Export:
    """The person's data as a JSON document of at most about ``max_bytes``; raises
    ``Identity.DoesNotExist`` for an unknown id."""
    now = now or timezone.now()
    identity = Identity.objects.get(pk=identity_id)
    messages = Message.objects.filter(identity_id=identity_id)
    total = messages.count()
    chat_ids = set(messages.order_by().values_list("chat_id", flat=True).distinct())
    reminders = _reminders(identity_id)
    chat_ids |= {reminder["chat"] for reminder in reminders}
    accounts = _accounts(identity)
    usage = _usage(identity_id)
    sentinel = f"@@messages-{uuid.uuid4().hex}@@"
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": now,
        "identity": _identity(identity),
        "chats": _chats(chat_ids),
        "conversations": _conversations(messages),
        "reminders": reminders,
        "confirmations": _confirmations(identity_id),
        "connected_accounts": accounts,
        "usage": usage,
        "messages_total": total,
        "messages_included": 0,
        "messages": sentinel,
    }
    head = _dumps(document, indent=2)
    room = max_bytes - len(head.encode())
    rows = _newest_messages_within(messages, room)
    document["messages_included"] = len(rows)
    head, tail = _dumps(document, indent=2).split(f'"{sentinel}"')
    body = ",\n    ".join(reversed(rows))  # oldest first, as a conversation reads
    text = f"{head}[\n    {body}\n  ]{tail}" if rows else f"{head}[]{tail}"
    return Export(
        data=text.encode(),
        file_name=f"aisystem-data-{timezone.localdate(now).isoformat()}.json",
        messages_total=total,
        messages_included=len(rows),
        chats=len(chat_ids),
        reminders=len(reminders),
        accounts=len(accounts),
        usage_days=len({row["day"] for row in usage}),
    )


def _dumps(value: object, *, indent: int | None = None) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=indent)


def _newest_messages_within(messages: Any, room: int) -> list[str]:
    """The newest messages, each as one JSON line, as many as fit in ``room`` bytes."""
    rows: list[str] = []
    used = 0
    newest_first = messages.order_by("-created_at", "-pk").values_list(*_MESSAGE_FIELDS)
    for values in newest_first.iterator(chunk_size=_CHUNK):
        line = _dumps(_message(dict(zip(_MESSAGE_FIELDS, values, strict=True))))
        size = len(line.encode()) + 6  # the separator and indentation around it
        if used + size > room:
            break
        rows.append(line)
        used += size
    return rows


def _message(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["pk"],
        "chat": row["chat_id"],
        "conversation": row["conversation_id"],
        "direction": row["direction"],
        "kind": row["kind"],
        "status": row["status"],
        "text": row["text"],
        "edited": row["is_edited"],
        "forwarded": row["is_forwarded"],
        "reply_to": row["reply_to_id"],
        "model": row["model"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cost_usd": str(row["cost_usd"]),
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
    }


def _identity(identity: Identity) -> dict[str, Any]:
    time_zone = (
        PersonSettings.objects.filter(identity=identity).values_list("time_zone", flat=True).first()
    )
    return {
        "transport": identity.transport,
        "external_id": identity.external_id,
        "username": identity.username,
        "display_name": identity.display_name,
        "role": identity.role,
        "first_seen_at": identity.first_seen_at,
        "last_seen_at": identity.last_seen_at,
        "time_zone": time_zone or "",
    }


def _chats(chat_ids: set[int]) -> list[dict[str, Any]]:
    return [
        {
            "id": chat.pk,
            "transport": chat.transport,
            "external_id": chat.external_id,
            "type": chat.chat_type,
            "title": chat.title,
        }
        for chat in Chat.objects.filter(pk__in=chat_ids).order_by("pk")
    ]


def _conversations(messages: Any) -> list[dict[str, Any]]:
    ids = messages.order_by().values_list("conversation_id", flat=True).distinct()
    return [
        {
            "id": conversation.pk,
            "chat": conversation.chat_id,
            "workspace": conversation.workspace.slug,
            "started_at": conversation.started_at,
            "ended_at": conversation.ended_at,
            "ended_reason": conversation.ended_reason,
        }
        for conversation in Conversation.objects.filter(pk__in=ids)
        .select_related("workspace")
        .order_by("started_at", "pk")
    ]


def _reminders(identity_id: int) -> list[dict[str, Any]]:
    return [
        {
            "id": reminder.pk,
            "chat": reminder.chat_id,
            "kind": reminder.kind,
            "text": reminder.text,
            "status": reminder.status,
            "due_at": reminder.due_at,
            "recurrence": reminder.recurrence,
            "created_at": reminder.created_at,
            "sent_at": reminder.sent_at,
        }
        for reminder in Reminder.objects.filter(identity_id=identity_id).order_by("created_at")
    ]


def _confirmations(identity_id: int) -> list[dict[str, Any]]:
    return [
        {
            "id": action.pk,
            "tool": action.tool,
            "summary": action.summary,
            "arguments": action.arguments,
            "status": action.status,
            "result": action.result,
            "created_at": action.created_at,
            "decided_at": action.decided_at,
        }
        for action in PendingAction.objects.filter(identity_id=identity_id).order_by("created_at")
    ]


def _accounts(identity: Identity) -> list[dict[str, Any]]:
    """Connected accounts (they belong to the identity's Django user), by what the person
    and staff may see: ``extra_data``, which holds the tokens, is not even loaded."""
    if identity.user_id is None:
        return []
    accounts = (
        IntegrationAccount.objects.filter(user_id=identity.user_id)
        .defer("extra_data")
        .order_by("provider", "pk")
    )
    return [
        {
            "provider": account.provider,
            "login": account.login,
            "uid": account.uid,
            "scopes": account.scopes.replace(",", " ").split(),
            "status": account.status,
            "connected_at": account.created,
            "last_used_at": account.last_used_at,
        }
        for account in accounts
    ]


def _usage(identity_id: int) -> list[dict[str, Any]]:
    return [
        {
            "day": row.day,
            "workspace": row.workspace.slug,
            "messages": row.messages,
            "failed": row.failed,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "cost_usd": str(row.cost_usd),
        }
        for row in DailyUsage.objects.filter(identity_id=identity_id)
        .select_related("workspace")
        .order_by("day", "workspace__slug")
    ]
