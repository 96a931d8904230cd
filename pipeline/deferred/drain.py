"""The deferred job's runs: answering claimed messages, several at a time, and queueing
helper runs for the other workers (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aisystem.models import CircuitBreaker, MessageStatus
from pipeline.agent import ClaudeAPI
from pipeline.claude.client import ClaudeClient
from pipeline.deferred.claims import (
    OWNER_PREFIX,
    Claimed,
    backlog,
    claim_next,
    claimable,
    deferred_expire,
    give_back,
    held,
    lease_renew,
)
from pipeline.late import late_answer_record
from pipeline.processor import UnifiedMessageProcessor
from pipeline.replies import Reply, agent_reply
from pipeline.types import AgentResponse

logger = logging.getLogger(__name__)

# One run's time budget: within the minute between two scheduled runs, and far within
# django-q2's task timeout (answers already in flight when it ends are finished).
DRAIN_SECONDS = 50.0
CONCURRENCY = 4  # answers in flight at once in one run
HELP_TASK = "pipeline.deferred.deferred_help"
RENEW_EVERY_SECONDS = 5.0

Answered = Literal["settled", "unavailable", "lost"]


@dataclass
class _Drain:
    """One run's shared state: its answerers stop together when Claude is unavailable, when
    the budget is spent, or when ``limit`` messages were claimed."""

    processor: UnifiedMessageProcessor
    owner: str
    until: float  # time.monotonic() after which nothing new is claimed
    limit: int | None
    claims: int = 0
    settled: int = 0
    stopped: bool = False
    error: Exception | None = None  # the first unexpected one: the run stops, then raises it

    def may_claim(self) -> bool:
        if self.stopped or time.monotonic() >= self.until:
            return False
        return self.limit is None or self.claims < self.limit

    async def step(self) -> bool:
        """Claim and answer one message; False when this answerer should stop."""
        if not self.may_claim():
            return False
        self.claims += 1  # counted before the claim: answerers run concurrently
        claimed = await sync_to_async(claim_next)(self.owner, timezone.now())
        if claimed is None:
            self.claims -= 1
            return False  # nothing claimable now (others hold the rest, or none is left)
        try:
            outcome = await _answer(self.processor, claimed)
        except Exception as error:  # not Claude's failure (the agent reports those): a bug
            logger.exception("deferred: answering message %s failed", claimed.context.message_pk)
            await sync_to_async(give_back)(claimed)
            self.error = self.error or error
            self.stopped = True
            return False
        if outcome == "unavailable":
            self.stopped = True
            return False
        self.settled += outcome == "settled"
        return True

    async def loop(self) -> None:
        while await self.step():
            pass


async def _lease_keep(claimed: Claimed, work: asyncio.Future[AgentResponse]) -> None:
    """Renew the claim while ``work`` runs; if the lease was taken over, stop the work."""
    while True:
        await asyncio.sleep(RENEW_EVERY_SECONDS)
        try:
            if await sync_to_async(lease_renew)(claimed):
                continue
        except Exception:  # the database is busy: the lease has a few more chances
            logger.warning("deferred: could not renew a lease", exc_info=True)
            continue
        claimed.lost = True
        work.cancel()
        return


async def _answer(processor: UnifiedMessageProcessor, claimed: Claimed) -> Answered:
    """Answer one claimed message: "settled" (answered, or failed because Claude refused it),
    "unavailable" (it is deferred again) or "lost" (another run took it over meanwhile)."""
    plan = processor.router.plan(claimed.message, claimed.context)
    if plan.handler != "agent":  # it was routed to the agent when it arrived
        plan = replace(plan, handler="agent", reason="")
    work = asyncio.ensure_future(processor.agent.run(claimed.message, claimed.context, plan))
    keeper = asyncio.create_task(_lease_keep(claimed, work))
    try:
        response = await work
    except asyncio.CancelledError:
        if not claimed.lost:
            raise
        logger.info("deferred: message %s was taken over", claimed.context.message_pk)
        return "lost"
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    if response.outcome == "unavailable":
        await sync_to_async(give_back)(claimed)
        return "unavailable"
    recorded = await sync_to_async(_record)(claimed, agent_reply(response), response)
    return "settled" if recorded else "lost"


def _record(claimed: Claimed, reply: Reply, response: AgentResponse) -> bool:
    """Store the late reply (an answer, or the "refused" notice) and queue it for delivery, in
    one transaction that first checks the lease still holds; False (nothing written) if not."""
    answered = reply.status == MessageStatus.ANSWERED
    reason = "deferred" if answered else reply.reason
    message, context = claimed.message, claimed.context
    with transaction.atomic():
        if not held(claimed).update(lease_owner="", lease_until=None):
            return False
        late_answer_record(
            message=message,
            context=context,
            reply=reply,
            response=response,
            kind="deferred",
            reason=reason,
            summary=("Answered after Claude came back", "Deferred answer failed"),
        )
    return True


def _helpers_enqueue(wanted: int) -> int:
    """Queue up to ``wanted`` helper runs, one per ``CONCURRENCY`` messages still waiting
    beyond what this run takes on; returns how many were queued. (Outside any transaction:
    the task rows are written at once.)"""
    count = min(wanted, backlog() // CONCURRENCY)
    if count <= 0:
        return 0
    from django_q.tasks import async_task  # the broker's models: load late

    for _ in range(count):
        async_task(HELP_TASK, group="deferred")
    logger.info("deferred: queued %d helper run(s)", count)
    return count


async def _drain(
    client: ClaudeAPI | None,
    *,
    budget_seconds: float,
    limit: int | None,
    concurrency: int,
    helpers: int,
) -> int:
    # Each run has an event loop of its own, so the Claude client (whose HTTP connections
    # belong to that loop) is made here and closed at the end, not shared between runs.
    own = ClaudeClient() if client is None else None
    drain = _Drain(
        processor=UnifiedMessageProcessor(client=client or own),
        owner=_owner(),
        until=time.monotonic() + budget_seconds,
        limit=limit,
    )
    try:
        if await drain.step():  # the first answer alone: is Claude back?
            if helpers > 0:
                await sync_to_async(_helpers_enqueue)(helpers)
            await asyncio.gather(*(drain.loop() for _ in range(max(concurrency, 1))))
    finally:
        if own is not None:
            await own.aclose()
    if drain.error is not None:  # the job fails visibly (job.failed); the rest was recorded
        raise drain.error
    return drain.settled


def _other_workers() -> int:
    """How many workers this cluster has besides the one running this job."""
    workers = settings.Q_CLUSTER.get("workers", 1)
    return max(int(workers) - 1, 0) if isinstance(workers, int) else 0


def _owner() -> str:
    return f"{OWNER_PREFIX}{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _breaker_refusing(now: datetime) -> bool:
    """Open (or probing, under a live lease) and not yet due: nobody may call Claude now.
    Once due, our first call is the probe."""
    return CircuitBreaker.objects.filter(
        service="anthropic",
        state__in=(CircuitBreaker.State.OPEN, CircuitBreaker.State.HALF_OPEN),
        open_until__gt=now,
    ).exists()


def deferred_answer(
    *,
    limit: int | None = None,
    client: ClaudeAPI | None = None,
    budget_seconds: float = DRAIN_SECONDS,
    concurrency: int = CONCURRENCY,
    helpers: int | None = None,
) -> int:
    """The scheduled job: expire old ones, then drain the backlog (oldest first per chat, see
    the module docstring) until none is left, ``budget_seconds`` have passed, ``limit``
    messages were claimed, or Claude is unavailable. ``helpers``: how many helper runs it may
    queue for other workers (default: one per other worker of the cluster, ``Q_WORKERS`` - 1).

    Returns how many were settled: answered, or failed because Claude refused them (a message
    Claude still cannot answer stays deferred and is not counted). ``client`` is for tests; by
    default a real one, closed when the run ends."""
    now = timezone.now()
    deferred_expire(now=now)
    if _breaker_refusing(now) or not claimable(now).exists():
        return 0
    if helpers is None:
        helpers = _other_workers()
    answered = async_to_sync(_drain)(
        client,
        budget_seconds=budget_seconds,
        limit=limit,
        concurrency=concurrency,
        helpers=helpers,
    )
    logger.info("answered %d deferred message(s)", answered)
    return answered


def deferred_help() -> int:
    """A helper run, queued by a run whose backlog is larger than it can take on: the same
    drain, queueing no helpers of its own."""
    return deferred_answer(helpers=0)
