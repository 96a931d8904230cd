"""``/forget``: delete what the assistant keeps about one person, once they confirmed it.

``/forget`` proposes a ``PendingAction`` with the tool ``FORGET_ACTION``; the person's
/confirm (or the Confirm button of their transport) runs it through ``pipeline.tools.pending``,
exactly once: ``pipeline.tools.internal`` first disconnects their accounts (revoking each at
its provider, ``aisystem.integrations``), then calls ``identity_forget`` for the rest, which
only touches the database.

**Deleted**

* their messages, in and out (the replies they received are stored against them), with
  the live-feed events about those messages (which hold previews of the text), the outbox
  items that would still send or have sent them, and any attachment held for them;
* their reminders and scheduled prompts, their changes waiting for confirmation (the
  arguments hold what they wrote), their one-time connect links and their time zone;
* their connected accounts: revoked at the provider by the caller, then deleted here, even
  when the provider cannot confirm the revocation (the reply says which);
* the conversations left empty; the ones still running in their private chats are ended,
  so the next message starts a fresh one; a private chat's title (their name) is blanked
  and its ``/workspace`` choice reset;
* their name and username on the identity (the transport sends them again with the next
  message), and the sign-in-less Django user made only to own their accounts.

**Kept**

* the identity row itself, with what staff decided about it (role, block, rate-limit
  policies, access rules, a browser user's sign-in account): forgetting must not change
  who may use the assistant, and the person can write again at once;
* today's usage counters, until the day ends, so a daily budget still holds; earlier days
  stay only as anonymous totals (the identity is taken off the rows) for staff's figures;
* the ``/forget`` request and its question, and any message still being answered (such
  as the ``/confirm`` that runs this, whose reply is recorded after it): deleting a message
  under the process answering it would fail that answer;
* messages other people wrote (in a group), and the staff audit: the ``identity.forgotten``
  event, with counts and no content.

Messages go in batches of ``batch``, each its own transaction (retention's rule: no long
locks); the rest, and the event, in one transaction at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from aisystem.events import PendingEvent, events_record
from aisystem.models import (
    Chat,
    ChatType,
    ConnectLink,
    Conversation,
    DailyUsage,
    Direction,
    Event,
    Identity,
    IntegrationAccount,
    Message,
    MessageStatus,
    OutboxItem,
    PendingAction,
    PersonSettings,
    Reminder,
    Transport,
)
from aisystem.services.usage import usage_day

FORGET_ACTION = "identity_forget"  # the PendingAction.tool of a /forget waiting for /confirm
BATCH = 500
_PRIVATE = (ChatType.PRIVATE, ChatType.WEB, ChatType.API)
_IN_FLIGHT = (MessageStatus.RECEIVED, MessageStatus.PROCESSING)


@dataclass(frozen=True)
class Forgotten:
    messages: int
    conversations: int  # deleted (left empty) or ended
    reminders: int
    accounts: int  # disconnected
    not_revoked: list[str] = field(default_factory=list)  # providers that did not confirm


def identity_forget(
    *,
    identity_id: int,
    keep_message_id: int | None = None,
    keep_action_id: int | None = None,
    accounts: int = 0,
    not_revoked: list[str] | None = None,
    now: datetime | None = None,
    batch: int = BATCH,
) -> Forgotten:
    """Forget the person (see the module's docstring for what goes and what stays).
    ``keep_message_id`` is the request's message (kept with its replies), ``keep_action_id``
    the confirmation running this (kept: it is how the audit ties together). ``accounts``
    and ``not_revoked`` are what the caller disconnected, for the audit and the reply; any
    account still left is deleted here without a call to its provider."""
    now = now or timezone.now()
    not_revoked = list(not_revoked or [])
    theirs = Message.objects.filter(identity_id=identity_id)
    chat_ids = set(theirs.order_by().values_list("chat_id", flat=True).distinct())
    chat_ids |= set(
        Reminder.objects.filter(identity_id=identity_id).values_list("chat_id", flat=True)
    )
    conversation_ids = set(
        theirs.exclude(conversation__isnull=True)
        .order_by()
        .values_list("conversation_id", flat=True)
        .distinct()
    )
    deleted = _messages_delete(theirs.exclude(_kept(keep_message_id)), batch)
    with transaction.atomic():
        _, by_model = Reminder.objects.filter(identity_id=identity_id).delete()
        reminders = by_model.get(Reminder._meta.label, 0)
        PendingAction.objects.filter(identity_id=identity_id).exclude(
            pk__in=[keep_action_id] if keep_action_id is not None else []
        ).delete()
        ConnectLink.objects.filter(identity_id=identity_id).delete()
        _accounts_delete(identity_id)
        PersonSettings.objects.filter(identity_id=identity_id).delete()
        private = _private_chats(identity_id, chat_ids)
        conversations = _conversations_close(identity_id, conversation_ids, private, now)
        Chat.objects.filter(pk__in=private).update(title="", selected_workspace=None)
        OutboxItem.objects.filter(chat_id__in=private).exclude(
            status=OutboxItem.Status.SENDING
        ).delete()
        _identity_blank(identity_id, now)
        DailyUsage.objects.filter(identity_id=identity_id, day__lt=usage_day(now)).update(
            identity=None
        )
        forgotten = Forgotten(
            messages=deleted,
            conversations=conversations,
            reminders=reminders,
            accounts=accounts,
            not_revoked=not_revoked,
        )
        events_record([_forgotten_event(identity_id, forgotten, now)])
    return forgotten


def _kept(keep_message_id: int | None) -> Q:
    """Messages that stay: the request and its replies, and those still being answered."""
    kept = Q(direction=Direction.INBOUND, status__in=_IN_FLIGHT)
    if keep_message_id is not None:
        kept |= Q(pk=keep_message_id) | Q(reply_to_id=keep_message_id)
    return kept


def _messages_delete(messages: QuerySet[Message], batch: int) -> int:
    """Delete ``messages`` ``batch`` at a time, with their events and outbox items."""
    total = 0
    while True:
        keys = list(messages.order_by("pk").values_list("pk", flat=True)[:batch])
        if not keys:
            return total
        with transaction.atomic():
            Event.objects.filter(message_id__in=keys).delete()
            OutboxItem.objects.filter(source_message_id__in=keys).exclude(
                status=OutboxItem.Status.SENDING
            ).delete()
            Message.objects.filter(pk__in=keys).delete()
        total += len(keys)


def _private_chats(identity_id: int, chat_ids: set[int]) -> list[int]:
    """The chats among ``chat_ids`` that are the person's alone: a private, browser or API
    chat in which no one else's message is stored."""
    shared = (
        Message.objects.filter(chat_id__in=chat_ids, identity__isnull=False)
        .exclude(identity_id=identity_id)
        .values_list("chat_id", flat=True)
    )
    return list(
        Chat.objects.filter(pk__in=chat_ids, chat_type__in=_PRIVATE)
        .exclude(pk__in=shared)
        .values_list("pk", flat=True)
    )


def _conversations_close(
    identity_id: int, conversation_ids: set[int], private: list[int], now: datetime
) -> int:
    """Delete the ended conversations the deletion left empty, end the running ones of the
    person's own chats, and take the person off the rest. Returns how many went or ended.

    A running conversation is ended, never deleted: a message being answered right now (the
    /confirm) records its outcome against it after this."""
    empty = (
        Conversation.objects.filter(pk__in=conversation_ids, ended_at__isnull=False)
        .filter(messages__isnull=True)
        .values_list("pk", flat=True)
    )
    _, by_model = Conversation.objects.filter(pk__in=list(empty)).delete()
    deleted = by_model.get(Conversation._meta.label, 0)
    ended = Conversation.objects.filter(chat_id__in=private, ended_at__isnull=True).update(
        ended_at=now, ended_reason="forget"
    )
    Conversation.objects.filter(started_by_id=identity_id).update(started_by=None)
    return deleted + ended


def _accounts_delete(identity_id: int) -> None:
    user_id = Identity.objects.filter(pk=identity_id).values_list("user_id", flat=True).first()
    if user_id is not None:
        IntegrationAccount.objects.filter(user_id=user_id).delete()


def _identity_blank(identity_id: int, now: datetime) -> None:
    """Blank the name and username (the next message brings them back), and delete the user
    made only to own connected accounts: no usable password, not staff, not a browser
    user's own sign-in."""
    identity = Identity.objects.select_related("user").get(pk=identity_id)
    Identity.objects.filter(pk=identity_id).update(
        username="", display_name="", first_seen_at=now, last_seen_at=now
    )
    user = identity.user
    if (
        user is not None
        and identity.transport != Transport.WEB
        and not user.has_usable_password()
        and not user.is_staff
        and not user.is_superuser
        and not Identity.objects.filter(user_id=user.pk).exclude(pk=identity_id).exists()
    ):
        get_user_model().objects.filter(pk=user.pk).delete()


def _forgotten_event(identity_id: int, forgotten: Forgotten, now: datetime) -> PendingEvent:
    return PendingEvent(
        kind="identity.forgotten",
        summary=f"Identity #{identity_id} was forgotten at their request",
        data={
            "identity_id": identity_id,
            "messages": forgotten.messages,
            "conversations": forgotten.conversations,
            "reminders": forgotten.reminders,
            "accounts": forgotten.accounts,
            "accounts_not_revoked": len(forgotten.not_revoked),
        },
        created_at=now,
    )
