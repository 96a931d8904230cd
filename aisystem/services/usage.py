"""The daily usage rollup (``DailyUsage``): kept current as messages are answered, rebuilt
from the stored messages on request.

**Incremental, in the outcome's own transaction — not a periodic job.** ``usage_record`` is
called by ``pipeline.outcomes.message_finish``, the one function every outcome goes through
(prompt answers, deferred and background answers, scheduled prompts), inside the transaction
that stores the reply. So:

* the figure is exact at every moment: the security gate enforces the daily budgets from it
  and ``/usage`` shows it, and a job running every few minutes would let a person overrun a
  budget by whatever they used since its last run;
* it commits or rolls back with the reply it counts: a reply is never missed nor counted
  twice (a retried outcome that rolled back added nothing);
* it is cheap: one UPDATE of one row, found by its unique key, per finished message (the
  workspace comes from the conversation in a subquery), and an INSERT the first time a
  person uses a workspace on a day; a message that is only ignored (a group message not
  meant for the assistant) writes nothing.

**Concurrency.** The UPDATE adds with ``F()`` expressions (``messages = messages + 1``): the
database adds, so two workers updating one row never overwrite each other. When no row was
updated, the row is INSERTed in a savepoint; when that loses a race to another worker's
insert (the unique key raises ``IntegrityError``), the UPDATE runs again and finds the row.
On PostgreSQL (READ COMMITTED) the losing INSERT waits for the winner to commit, so its second
UPDATE sees the committed row; SQLite runs one writer at a time (IMMEDIATE transactions).
Django's ``bulk_create(update_conflicts=True)`` is no help here: its upsert overwrites a row
with the new values (``SET x = EXCLUDED.x``), it cannot add to them.

**Rebuilding** (``usage_rebuild``; ``python manage.py usage_rollup``, and the migration that
made the table ran it over the history once): each day of a range is recomputed from the
stored messages and written with ``bulk_create(update_conflicts=True)``, which is right
there: the values are totals, not increments. It is idempotent and meant for upgrades and
repairs, not for a schedule: the incremental rows are exact, and messages do not stay (a
workspace's retention purges them, ``/forget`` deletes them) while the rollup must. So a
rebuild only sets the rows it has messages for and leaves every other row as it is, and it
skips a day of a workspace whose retention has already purged part of that day. On
PostgreSQL it locks the table against concurrent increments while it recomputes a day
(``SHARE ROW EXCLUSIVE``: reads go on, writers wait), so an answer being recorded meanwhile
is counted once; on SQLite the IMMEDIATE transaction does the same.

A rebuilt day counts a message as answered on the day it arrived; the incremental rollup
counts it on the day it was answered. The two differ only for an answer deferred past
midnight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from aisystem.models import (
    Conversation,
    DailyUsage,
    Direction,
    Message,
    MessageStatus,
    Workspace,
)

logger = logging.getLogger(__name__)

_Key = tuple[date, int, int]  # (day, workspace id, identity id)


def day_start(day: date) -> datetime:
    """Midnight starting ``day`` in the installation's ``TIME_ZONE``, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def usage_day(at: datetime) -> date:
    """The rollup's day for a moment: its date in the installation's ``TIME_ZONE``."""
    return timezone.localdate(at, timezone.get_default_timezone())


def usage_record(
    *,
    identity_id: int,
    conversation_id: int | None,
    at: datetime,
    status: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: Decimal = Decimal(0),
) -> None:
    """Count one finished message of ``identity_id``: answered or failed by its ``status``
    (any other status counts no message), with the tokens and cost of its stored reply, on
    the day of ``at`` in the workspace of its conversation. Call it inside the transaction
    that records the outcome. Writes nothing when there is nothing to count; otherwise, once
    the person's row of the day exists, one UPDATE (it finds the workspace through the
    conversation in a subquery rather than a query of its own)."""
    values = _Values(
        messages=1 if status == MessageStatus.ANSWERED else 0,
        failed=1 if status == MessageStatus.FAILED else 0,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
    )
    if not values:
        return
    day = usage_day(at)
    if conversation_id is not None:
        workspace = Conversation.objects.filter(pk=conversation_id).values("workspace_id")[:1]
        key = {"day": day, "identity_id": identity_id, "workspace_id": Subquery(workspace)}
        if _increment(key, values, now=at):
            return
    workspace_id = _workspace_of(conversation_id)
    if workspace_id is None:
        logger.warning("usage of identity %s not counted: no workspace to count it in", identity_id)
        return
    _add(day=day, workspace_id=workspace_id, identity_id=identity_id, values=values, now=at)


@dataclass(frozen=True)
class _Values:
    messages: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def __bool__(self) -> bool:
        return bool(
            self.messages or self.failed or self.input_tokens or self.output_tokens or self.cost_usd
        )


def usage_add(
    *,
    day: date,
    workspace_id: int,
    identity_id: int,
    messages: int = 0,
    failed: int = 0,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: Decimal = Decimal(0),
    now: datetime | None = None,
) -> None:
    """Add to the row of (``day``, ``workspace_id``, ``identity_id``), creating it if needed;
    safe under any number of concurrent callers (see the module's docstring)."""
    values = _Values(messages, failed, input_tokens, output_tokens, cost_usd)
    _add(
        day=day,
        workspace_id=workspace_id,
        identity_id=identity_id,
        values=values,
        now=now or timezone.now(),
    )


def _add(*, day: date, workspace_id: int, identity_id: int, values: _Values, now: datetime) -> None:
    key = {"day": day, "workspace_id": workspace_id, "identity_id": identity_id}
    if _increment(key, values, now=now):
        return
    try:
        with transaction.atomic():  # a savepoint: losing the race must not end the caller's
            DailyUsage.objects.create(
                **key,
                messages=values.messages,
                failed=values.failed,
                input_tokens=values.input_tokens,
                output_tokens=values.output_tokens,
                cost_usd=values.cost_usd,
                updated_at=now,
            )
    except IntegrityError:  # another worker inserted it first: add to theirs
        _increment(key, values, now=now)


def _increment(key: dict[str, Any], values: _Values, *, now: datetime) -> int:
    """One UPDATE adding ``values`` to the row ``key`` names (the database adds: F()); how
    many rows it changed (0: there is no such row yet)."""
    return DailyUsage.objects.filter(**key).update(
        messages=F("messages") + values.messages,
        failed=F("failed") + values.failed,
        input_tokens=F("input_tokens") + values.input_tokens,
        output_tokens=F("output_tokens") + values.output_tokens,
        cost_usd=F("cost_usd") + values.cost_usd,
        updated_at=now,
    )


def _workspace_of(conversation_id: int | None) -> int | None:
    """The conversation's workspace; with no conversation, the default one (or None)."""
    if conversation_id is not None:
        found = (
            Conversation.objects.filter(pk=conversation_id)
            .values_list("workspace_id", flat=True)
            .first()
        )
        if found is not None:
            return int(found)
    default = Workspace.objects.filter(is_default=True).values_list("pk", flat=True).first()
    return int(default) if default is not None else None


# --- Rebuilding from the stored messages --------------------------------------------------


@dataclass(frozen=True)
class Rebuilt:
    days: int  # days recomputed
    rows: int  # rows written (created or set)
    skipped: int  # (day, workspace) pairs left alone: retention had purged part of them


def usage_rebuild(*, since: date, until: date, now: datetime | None = None) -> Rebuilt:
    """Recompute the rows of every day from ``since`` to ``until`` (both included) from the
    stored messages, one transaction per day; see the module's docstring for what is left
    alone. Returns what it did."""
    if until < since:
        raise ValueError(f"the range ends ({until}) before it starts ({since})")
    now = now or timezone.now()
    horizons = _retention_horizons(now)
    rows = skipped = days = 0
    day = since
    while day <= until:
        written, left = _rebuild_day(day, horizons)
        rows, skipped, days = rows + written, skipped + left, days + 1
        day += timedelta(days=1)
    return Rebuilt(days=days, rows=rows, skipped=skipped)


def _retention_horizons(now: datetime) -> dict[int, datetime]:
    """workspace id → the moment before which its retention has deleted messages."""
    return {
        pk: now - timedelta(days=keep)
        for pk, keep in Workspace.objects.filter(message_retention_days__isnull=False)
        .values_list("pk", "message_retention_days")
        .iterator()
        if keep
    }


def _rebuild_day(day: date, horizons: dict[int, datetime]) -> tuple[int, int]:
    start, end = day_start(day), day_start(day + timedelta(days=1))
    with transaction.atomic():
        _lock_against_increments()
        totals = _day_totals(start, end)
        purged = {key for key in totals if key[1] in horizons and start < horizons[key[1]]}
        skipped = len({workspace for _, workspace, _ in purged})
        rows = [
            DailyUsage(
                day=key[0],
                workspace_id=key[1],
                identity_id=key[2],
                updated_at=timezone.now(),
                **values,
            )
            for key, values in totals.items()
            if key not in purged
        ]
        DailyUsage.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["day", "workspace", "identity"],
            update_fields=[
                "messages",
                "failed",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "updated_at",
            ],
        )
    return len(rows), skipped


def _lock_against_increments() -> None:
    """PostgreSQL: make ``usage_add`` wait until this transaction ends (SQLite's IMMEDIATE
    transaction holds the one write lock already)."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(DailyUsage._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


def _day_totals(start: datetime, end: datetime) -> dict[_Key, dict[str, object]]:
    """(day, workspace, identity) → the day's totals, from the messages of [start, end)."""
    day = usage_day(start)
    totals: dict[_Key, dict[str, object]] = {}

    def entry(workspace_id: int, identity_id: int) -> dict[str, object]:
        blank: dict[str, object] = {
            "messages": 0,
            "failed": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": Decimal(0),
        }
        return totals.setdefault((day, workspace_id, identity_id), blank)

    counted = _day_messages(start, end).filter(
        direction=Direction.INBOUND, status__in=[MessageStatus.ANSWERED, MessageStatus.FAILED]
    )
    for row in counted.values("conversation__workspace_id", "identity_id").annotate(
        answered=Count("pk", filter=Q(status=MessageStatus.ANSWERED)),
        failures=Count("pk", filter=Q(status=MessageStatus.FAILED)),
    ):
        values = entry(row["conversation__workspace_id"], row["identity_id"])
        values["messages"], values["failed"] = row["answered"], row["failures"]
    replies = _day_messages(start, end).filter(direction=Direction.OUTBOUND)
    for row in replies.values("conversation__workspace_id", "identity_id").annotate(
        input=Sum("input_tokens"), output=Sum("output_tokens"), cost=Sum("cost_usd")
    ):
        if not (row["input"] or row["output"] or row["cost"]):
            continue
        values = entry(row["conversation__workspace_id"], row["identity_id"])
        values["input_tokens"], values["output_tokens"] = row["input"], row["output"]
        values["cost_usd"] = row["cost"]
    return totals


def _day_messages(start: datetime, end: datetime) -> QuerySet[Message]:
    return Message.objects.filter(
        created_at__gte=start,
        created_at__lt=end,
        identity__isnull=False,
        conversation__isnull=False,
    ).order_by()
