"""The deferred job's claims: which messages a run may take, and the lease it holds them by
(see the package docstring). Each is one short database hop for ``sync_to_async``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from aisystem.models import Direction, Message, MessageStatus
from pipeline import conversations
from pipeline.types import InboundMessage, MessageContext

DEFERRED_MAX_AGE = timedelta(hours=24)
LEASE = timedelta(seconds=30)
OWNER_PREFIX = "deferred:"  # the lease_owner of this job's claims
BACKGROUND = "background"  # pipeline.background's status reason: its own task answers those
CLAIM_TRIES = 10  # lost races and sender-less rows skipped before a run gives up for now


@dataclass
class Claimed:
    """A message this run holds under its lease (``owner``), with what answering it needs."""

    message: InboundMessage
    context: MessageContext
    owner: str
    lost: bool = False  # the lease was taken over: record nothing


def deferred_expire(*, now: datetime | None = None) -> int:
    """Give up on deferred messages older than DEFERRED_MAX_AGE (and on claims of this job
    that old whose worker died); returns how many."""
    moment = now or timezone.now()
    orphaned = Q(
        status=MessageStatus.PROCESSING,
        lease_owner__startswith=OWNER_PREFIX,
        lease_until__lt=moment,
    )
    return Message.objects.filter(
        Q(status=MessageStatus.DEFERRED) | orphaned,
        direction=Direction.INBOUND,
        created_at__lt=moment - DEFERRED_MAX_AGE,
    ).update(status=MessageStatus.FAILED, status_reason="expired", lease_owner="", lease_until=None)


def claimable(now: datetime) -> QuerySet[Message]:
    """Messages a run may claim now: deferred, or claimed by a run whose lease ran out, and
    with no older message of their chat still deferred or being answered by this job."""
    waiting = Q(status=MessageStatus.DEFERRED) | Q(
        status=MessageStatus.PROCESSING, lease_owner__startswith=OWNER_PREFIX, lease_until__lt=now
    )
    in_line = Q(status=MessageStatus.DEFERRED) | Q(
        status=MessageStatus.PROCESSING, lease_owner__startswith=OWNER_PREFIX
    )
    older = Q(created_at__lt=OuterRef("created_at")) | Q(
        created_at=OuterRef("created_at"), pk__lt=OuterRef("pk")
    )
    ahead = (
        Message.objects.filter(in_line, older, chat_id=OuterRef("chat_id"))
        .filter(direction=Direction.INBOUND)
        .exclude(status_reason=BACKGROUND)
    )
    return (
        Message.objects.filter(waiting, direction=Direction.INBOUND)
        .exclude(status_reason=BACKGROUND)
        .exclude(Exists(ahead))
    )


def claim_next(owner: str, now: datetime) -> Claimed | None:
    """Take the oldest claimable message for answering, or None if there is none (now)."""
    for _ in range(CLAIM_TRIES):
        pk = claimable(now).order_by("created_at", "pk").values_list("pk", flat=True).first()
        if pk is None:
            return None
        claimed = claim(pk, owner, now)
        if claimed is not None:
            return claimed
    return None


def claim(message_pk: int, owner: str, now: datetime) -> Claimed | None:
    """Take one message under a lease, or None if another run took it first (or it has no
    sender to answer: then it fails)."""
    waiting = Q(status=MessageStatus.DEFERRED) | Q(
        status=MessageStatus.PROCESSING, lease_owner__startswith=OWNER_PREFIX, lease_until__lt=now
    )
    with transaction.atomic():
        taken = (
            Message.objects.filter(waiting, pk=message_pk, direction=Direction.INBOUND)
            .exclude(status_reason=BACKGROUND)
            .update(status=MessageStatus.PROCESSING, lease_owner=owner, lease_until=now + LEASE)
        )
        if not taken:
            return None
        row = Message.objects.select_related("chat", "identity").get(pk=message_pk)
        if row.identity is None:
            Message.objects.filter(pk=message_pk).update(
                status=MessageStatus.FAILED,
                status_reason="no_sender",
                lease_owner="",
                lease_until=None,
            )
            return None
        inbound, context = conversations.context_for_stored(row, row.identity)
    return Claimed(message=inbound, context=context, owner=owner)


def held(claimed: Claimed) -> QuerySet[Message]:
    """The claimed row, as long as this run's lease holds it."""
    return Message.objects.filter(
        pk=claimed.context.message_pk, status=MessageStatus.PROCESSING, lease_owner=claimed.owner
    )


def lease_renew(claimed: Claimed) -> bool:
    return bool(held(claimed).update(lease_until=timezone.now() + LEASE))


def give_back(claimed: Claimed) -> None:
    """Claude is unavailable: deferred again, for the next run."""
    held(claimed).update(
        status=MessageStatus.DEFERRED,
        status_reason="claude_unavailable",
        lease_owner="",
        lease_until=None,
    )


def backlog() -> int:
    return (
        Message.objects.filter(direction=Direction.INBOUND, status=MessageStatus.DEFERRED)
        .exclude(status_reason=BACKGROUND)
        .count()
    )
