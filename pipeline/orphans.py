"""Orphans: inbound messages left "processing" by a process that died mid-answer.

Every message being processed holds a lease (``aisystem.services.leases``) that its process
renews. The minutely sweep (``orphans_sweep``, run by a worker) takes each message whose
lease ran out, with a conditional UPDATE so that two sweeps never both take one, and hands it
to the deferred job (deferred, reason "orphaned", a ``message.deferred`` event), which
answers it once with the conversation's history and delivers it as every late answer is
delivered: the outbox for Telegram and the browser chat, the chat's history and the
``message.answered`` webhook for REST. A REST caller that repeats its request with the same
``Idempotency-Key`` then gets that answer.

Left to others: background answers (their own sweep, ``pipeline.background``) and scheduled
prompts (the reminder's claim). A row from before leases existed counts as orphaned once it
is ``UNLEASED_AFTER`` old.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from aisystem.events import PendingEvent, events_record
from aisystem.models import Direction, Message, MessageStatus

ORPHANED = "orphaned"
UNLEASED_AFTER = timedelta(minutes=10)
BATCH = 200
_OWN_RECOVERY = ("background", "reminder")  # status reasons recovered by their own claims

logger = logging.getLogger(__name__)


def orphans_sweep(*, now: datetime | None = None) -> int:
    """Hand the orphaned messages to the deferred job; returns how many were taken."""
    moment = now or timezone.now()
    stale = Q(lease_until__lt=moment) | Q(
        lease_until__isnull=True, created_at__lt=moment - UNLEASED_AFTER
    )
    orphans = Message.objects.filter(
        stale, direction=Direction.INBOUND, status=MessageStatus.PROCESSING
    ).exclude(status_reason__in=_OWN_RECOVERY)
    taken = 0
    for pk, transport, chat_pk, owner in orphans.values_list(
        "pk", "transport", "chat_id", "lease_owner"
    )[:BATCH]:
        with transaction.atomic():
            if not orphans.filter(pk=pk).update(
                status=MessageStatus.DEFERRED,
                status_reason=ORPHANED,
                lease_owner="",
                lease_until=None,
            ):
                continue  # finished or taken meanwhile
            events_record(
                [_orphaned_event(owner)], transport=transport, chat_id=chat_pk, message_id=pk
            )
        taken += 1
    if taken:
        logger.warning("orphans: %d message(s) left by a dead process will be answered", taken)
    return taken


def _orphaned_event(owner: str) -> PendingEvent:
    return PendingEvent(
        kind="message.deferred",
        summary="Its process died mid-answer; it will be answered by a worker",
        level="warning",
        data={
            "status": "deferred",
            "reason": ORPHANED,
            "delivered": False,
            "parts": 0,
            "reply": "",
            "cost_usd": "0",
            "orphaned_from": owner.split(":", 1)[0],  # its role only: "web", "bridge", …
        },
    )
