"""Draining the outbox: replies produced elsewhere (jobs, deferred answers, API notices).

An ``OutboxItem`` moves ``pending`` → ``sending`` (claimed) → ``sent``, or back to ``pending``
with a later ``available_at`` after a failed attempt, or to ``failed`` when retrying can no
longer help. The services below are the only writers of those transitions:

* ``outbox_claim`` takes the oldest available items, **at most one per chat** and only the
  chat's earliest undelivered one, so a chat's replies go out in id order and one at a time.
  Each row is taken with a conditional ``UPDATE … WHERE status='pending'`` that re-checks the
  per-chat condition, so two drainers never claim the same row. While an item is ``sending``,
  its ``available_at`` holds the time it was claimed (``outbox_requeue_stale`` reads it).
* ``outbox_mark_sent`` / ``outbox_mark_failed`` act only on a ``sending`` row, so each item is
  marked done exactly once.
* A failed attempt is retried after 5 s, 30 s, 2 min and 10 min; the fifth failure is final.
  A flood wait (an exception with a numeric ``seconds``) retries at now + seconds and does not
  count as an attempt; an exception with ``permanent = True`` fails the item at once.
* A retry waiting in ``pending`` holds back the chat's later items: order beats speed.

``OutboxSender`` delivers claimed items through the response manager (Markdown → the
transport's format, split at its length limit) and records the outcome. Each item's
messages are journaled under its idempotency key (``telegram_bridge.journal``): a delivery
cut short (a crash, a requeue) goes on from what is on screen, a delivery already complete is
not sent again, and an answer the pipeline rescheduled (key ``reply:<message pk>``, the key
its stream was journaled under) is finished by editing the messages that stream showed, so
only what was never shown is sent. Delivered, an answer whose question has status reactions
gets 👍 (it showed 🕒 while it waited).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from aisystem.models import MessageStatus, OutboxItem
from aisystem.services.delivery import reply_deliveries_purge
from aisystem.services.outbox import outbox_enqueue as outbox_enqueue  # queued by the core
from pipeline.response_manager import REACTION_DONE, ResponseManager
from pipeline.types import DeliveryResult, OutboundMedia, Transport
from telegram_bridge.journal import JournalingTransport, ReplyJournal

logger = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# How long the record of a reply's messages is kept (``journal``): nothing resumes or retries
# a reply this old (the longest retry is 10 minutes, a flood wait rarely more than an hour).
REPLY_RECORDS_KEPT = timedelta(days=7)
_ERROR_CHARS = 500
_PENDING = OutboxItem.Status.PENDING
_SENDING = OutboxItem.Status.SENDING


@dataclass(frozen=True)
class OutboxClaim:
    """A claimed item: everything needed to deliver it. ``attempts`` counts earlier failures."""

    item_id: int
    chat_pk: int
    chat_external_id: str
    text: str
    reply_to: str | None
    attempts: int
    key: str = ""  # the idempotency key: the name its messages are journaled under
    react_when_sent: bool = False  # 👍 on ``reply_to`` once delivered (an answer, reactions on)


# --- Services (sync; call them through sync_to_async from the bridge) -----------------------


def _claimable(transport: str, now: datetime) -> QuerySet[OutboxItem]:
    """Pending, available items with no earlier undelivered item and nothing in flight in
    their chat (so at most one per chat: the chat's earliest pending item)."""
    blocking = OutboxItem.objects.filter(chat_id=OuterRef("chat_id")).filter(
        Q(status=_SENDING) | Q(status=_PENDING, pk__lt=OuterRef("pk"))
    )
    return OutboxItem.objects.filter(
        transport=transport, status=_PENDING, available_at__lte=now
    ).filter(~Exists(blocking))


def outbox_claim(*, transport: str, limit: int, now: datetime) -> list[OutboxClaim]:
    """Move up to ``limit`` items to ``sending`` and return them, oldest first.

    At most one item per chat, and only when no earlier item of that chat is pending or
    sending. A row another drainer took first is skipped, never returned twice.
    """
    with transaction.atomic():
        candidates = _claimable(transport, now).order_by("pk").values_list("pk", flat=True)
        taken = []
        for pk in list(candidates[: max(limit, 0)]):
            # Re-checks status and the per-chat condition in the UPDATE itself.
            if _claimable(transport, now).filter(pk=pk).update(status=_SENDING, available_at=now):
                taken.append(pk)
        rows = (
            OutboxItem.objects.filter(pk__in=taken)
            .select_related("chat", "source_message")
            .order_by("pk")
        )
        return [
            OutboxClaim(
                item_id=row.pk,
                chat_pk=row.chat_id,
                chat_external_id=row.chat.external_id,
                text=row.text,
                reply_to=row.reply_to_transport_message_id or None,
                attempts=row.attempts,
                key=row.idempotency_key,
                react_when_sent=_answers_with_reactions(row),
            )
            for row in rows
        ]


def _answers_with_reactions(row: OutboxItem) -> bool:
    """The item is the answer to a question (its source message was answered) in a chat that
    shows status reactions."""
    source = row.source_message
    return (
        source is not None
        and source.status == MessageStatus.ANSWERED
        and row.chat.status_reactions
        and bool(row.reply_to_transport_message_id)
    )


def outbox_mark_sent(item_id: int, transport_message_id: str, now: datetime) -> bool:
    """Record the delivery. True if this call marked it; False if the item was not
    ``sending`` (already marked, or requeued as stale): nothing changes then."""
    return bool(
        OutboxItem.objects.filter(pk=item_id, status=_SENDING).update(
            status=OutboxItem.Status.SENT,
            sent_transport_message_id=transport_message_id[:64],
            sent_at=now,
            last_error="",
        )
    )


def outbox_mark_failed(
    item_id: int, error: str, *, retry_at: datetime | None, count_attempt: bool = True
) -> bool:
    """Record a failed attempt: back to ``pending`` from ``retry_at``, or ``failed`` for good
    when ``retry_at`` is None. ``attempts`` grows by one unless ``count_attempt`` is False
    (a flood wait is Telegram's pacing, not the item's fault). True if this call marked it;
    False if the item was not ``sending``."""
    fields: dict[str, object] = {"last_error": error[:_ERROR_CHARS]}
    if count_attempt:
        fields["attempts"] = F("attempts") + 1
    if retry_at is None:
        fields["status"] = OutboxItem.Status.FAILED
    else:
        fields.update(status=_PENDING, available_at=retry_at)
    return bool(OutboxItem.objects.filter(pk=item_id, status=_SENDING).update(**fields))


def outbox_retry_at(*, failed_attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``failed_attempts`` failures (1-based), or None: give up."""
    if 1 <= failed_attempts <= len(RETRY_DELAYS):
        return now + RETRY_DELAYS[failed_attempts - 1]
    return None


def outbox_requeue_stale(*, older_than: datetime, transport: str | None = None) -> int:
    """Put items claimed before ``older_than`` and still ``sending`` back to ``pending``.

    They belong to a drainer that died (or hung) mid-delivery. Requeued, such an item is sent
    twice only if the process died after Telegram accepted it and before the ``sent`` write;
    leaving it would lose the reply for certain, and Telegram offers no way to ask whether a
    message went out, so a rare duplicate is the least bad choice. Each requeue counts as an
    attempt, so an item that keeps killing its sender ends ``failed`` instead of looping.
    Returns how many items were requeued or failed.
    """
    stale = OutboxItem.objects.filter(status=_SENDING, available_at__lt=older_than)
    if transport is not None:
        stale = stale.filter(transport=transport)
    note = "interrupted while sending; requeued"
    with transaction.atomic():
        exhausted = stale.filter(attempts__gte=MAX_ATTEMPTS - 1).update(
            status=OutboxItem.Status.FAILED, attempts=F("attempts") + 1, last_error=note
        )
        requeued = stale.update(status=_PENDING, attempts=F("attempts") + 1, last_error=note)
    if exhausted or requeued:
        logger.warning("outbox: %d stale items requeued, %d failed", requeued, exhausted)
    return exhausted + requeued


# --- The sender -------------------------------------------------------------------------------


class _ErrorWatchingTransport:
    """Passes every call through to ``inner`` and remembers the last exception it raised.

    The response manager turns transport exceptions into ``DeliveryResult(delivered=False)``;
    the sender still needs the exception itself (flood-wait seconds, the permanent flag).
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name
        self.text_format = inner.text_format
        self.max_message_length = inner.max_message_length
        self.streams = inner.streams
        self.edit_interval_seconds = inner.edit_interval_seconds
        self.error: Exception | None = None

    def _seen(self, error: Exception) -> None:
        self.error = error

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        try:
            return await self.inner.send_text(chat_id, text, reply_to=reply_to)
        except Exception as error:
            self._seen(error)
            raise

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        try:
            await self.inner.edit_text(chat_id, message_id, text)
        except Exception as error:
            self._seen(error)
            raise

    async def send_typing(self, chat_id: str) -> None:
        await self.inner.send_typing(chat_id)

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        await self.inner.react(chat_id, message_id, emoji)

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str:
        try:
            return await self.inner.send_media(chat_id, media, caption=caption, reply_to=reply_to)
        except Exception as error:
            self._seen(error)
            raise


def flood_wait_seconds(error: BaseException | None) -> float | None:
    """The wait a flood-wait style exception asks for (its numeric ``seconds``), else None."""
    seconds = getattr(error, "seconds", None)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    return None


class OutboxSender:
    """Delivers outbox items for one transport; see the module docstring for the rules.

    ``stale_after`` is how long an item may stay ``sending`` before ``run`` requeues it; it
    must exceed the longest delivery (including a transport's in-line flood-wait sleep).
    """

    def __init__(
        self,
        *,
        batch_size: int = 20,
        stale_after: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.batch_size = batch_size
        self.stale_after = stale_after
        self.clock = clock
        self._next_requeue: datetime | None = None

    async def drain_once(self, transport: Transport, responses: ResponseManager) -> int:
        """Claim one batch for ``transport.name`` and deliver it (chats concurrently).
        Returns how many items were delivered. Raises only if the database is unreachable."""
        claims = await sync_to_async(outbox_claim)(
            transport=transport.name, limit=self.batch_size, now=self.clock()
        )
        if not claims:
            return 0
        outcomes = await asyncio.gather(
            *(self._send(transport, responses, claim) for claim in claims),
            return_exceptions=True,
        )
        for claim, outcome in zip(claims, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Only the database can fail here; the item stays "sending" until requeued.
                logger.error(
                    "outbox item %d: recording the outcome failed: %r", claim.item_id, outcome
                )
        return sum(outcome is True for outcome in outcomes)

    async def run(
        self,
        stop: asyncio.Event,
        interval: float = 1.0,
        *,
        transport: Transport,
        responses: ResponseManager,
    ) -> None:
        """Drain until ``stop`` is set: again at once after a batch that delivered something,
        else after ``interval`` seconds. Requeues stale items at start and every
        ``stale_after``. Errors are logged and the loop goes on. A batch in progress when
        ``stop`` is set finishes first."""
        while not stop.is_set():
            delivered = 0
            try:
                await self._requeue_stale_if_due(transport.name)
                delivered = await self.drain_once(transport, responses)
            except Exception:
                logger.exception("outbox drain failed; retrying in %.1f s", interval)
            if delivered:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def _requeue_stale_if_due(self, transport_name: str) -> None:
        """Requeue stale items, and forget the records of replies nothing resumes or retries
        any more (``REPLY_RECORDS_KEPT``), at the start and every ``stale_after``."""
        now = self.clock()
        if self._next_requeue is not None and now < self._next_requeue:
            return
        await sync_to_async(outbox_requeue_stale)(
            older_than=now - self.stale_after, transport=transport_name
        )
        await sync_to_async(reply_deliveries_purge)(older_than=now - REPLY_RECORDS_KEPT)
        self._next_requeue = now + self.stale_after

    async def _send(
        self, transport: Transport, responses: ResponseManager, claim: OutboxClaim
    ) -> bool:
        """Deliver one claimed item and mark it; True if it was delivered and marked."""
        journal = ReplyJournal(
            claim.key or f"outbox:{claim.item_id}",
            transport=transport.name,
            chat_id=claim.chat_external_id,
        )
        journaled = JournalingTransport(transport, journal, reply_to=claim.reply_to)
        watched = _ErrorWatchingTransport(journaled)
        shown = await journaled.restore()
        if journal.complete and journal.text == claim.text:
            # Delivered whole before the process died, or before a requeue: not again.
            ids = tuple(shown)
            result = DeliveryResult(delivered=True, transport_message_ids=ids, parts=len(ids))
        else:
            if journal.complete:  # another reply under this key is on screen: a new one
                journal.start_over()
                shown = []
            journaled.batch_saves = True  # stored right below, before any other request
            result = await self._deliver(watched, responses, claim, shown)
            if result.delivered:
                await journal.finished(claim.text)
            else:
                await journal.flush()
        if result.delivered:
            first_id = result.transport_message_ids[0] if result.transport_message_ids else ""
            marked = await sync_to_async(outbox_mark_sent)(claim.item_id, first_id, self.clock())
            if not marked:
                logger.warning("outbox item %d was delivered but no longer ours", claim.item_id)
            if marked and claim.react_when_sent and claim.reply_to:
                await responses.react(
                    transport, claim.chat_external_id, claim.reply_to, REACTION_DONE
                )
            return marked
        await self._record_failure(claim, result.error or "not delivered", watched.error)
        return False

    @staticmethod
    async def _deliver(
        watched: _ErrorWatchingTransport,
        responses: ResponseManager,
        claim: OutboxClaim,
        shown: list[str],
    ) -> DeliveryResult:
        """The delivery, going on from the ``shown`` messages (their text unknown)."""
        try:
            return await responses.deliver(
                watched,
                claim.chat_external_id,
                claim.text,
                reply_to=claim.reply_to,
                shown=[(message_id, "") for message_id in shown],
            )
        except Exception as error:  # deliver() reports failures; this is a bug guard
            logger.exception("outbox item %d: delivery raised", claim.item_id)
            watched.error = watched.error or error
            return DeliveryResult(delivered=False, error=f"{type(error).__name__}: {error}")

    async def _record_failure(
        self, claim: OutboxClaim, message: str, error: Exception | None
    ) -> None:
        now = self.clock()
        wait = flood_wait_seconds(error)
        if wait is not None:
            retry_at: datetime | None = now + timedelta(seconds=wait)
        elif getattr(error, "permanent", False) is True:
            retry_at = None
        else:
            retry_at = outbox_retry_at(failed_attempts=claim.attempts + 1, now=now)
        await sync_to_async(outbox_mark_failed)(
            claim.item_id, message, retry_at=retry_at, count_attempt=wait is None
        )
        if retry_at is None:
            logger.error("outbox item %d failed for good: %s", claim.item_id, message)
        else:
            logger.warning("outbox item %d: retry at %s (%s)", claim.item_id, retry_at, message)
