"""The background queue in the admin: django-q2's own pages, re-registered with what staff ask
first — how many tasks wait and run, how long the oldest has waited, when each schedule runs
next — and a retry of failed tasks that re-queues each exactly once.

With the ORM broker a queued task is an ``OrmQ`` row: ``lock`` empty or past means it waits;
a worker that takes it pushes ``lock`` ahead by the cluster's ``retry`` seconds, so a lock
in the future means it is running (and will be handed out again if its worker died).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import django_q.admin as q_admin  # registers django-q2's pages first; re-registered below
from django.contrib import admin
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django_q.models import Failure, OrmQ, Schedule

_WAITING = Q(lock__isnull=True)


@dataclass(frozen=True)
class QueueOverview:
    waiting: int
    running: int
    failed: int
    oldest_waiting_since: datetime | None

    def headline(self, now: datetime) -> str:
        """The queue in one line, e.g. "3 waiting (the oldest for 4 minutes), 1 running"."""
        oldest = ""
        if self.oldest_waiting_since is not None:
            oldest = f" (the oldest for {timesince(self.oldest_waiting_since, now)})"
        return f"{self.waiting} waiting{oldest}, {self.running} running, {self.failed} failed"


def _waiting(now: datetime) -> Q:
    return _WAITING | Q(lock__lte=now)


def queue_overview(*, now: datetime) -> QueueOverview:
    """Counts of the queue's waiting, running and failed tasks, and the oldest wait."""
    waiting = OrmQ.objects.filter(_waiting(now))
    oldest = waiting.order_by("id").first()
    return QueueOverview(
        waiting=waiting.count(),
        running=OrmQ.objects.filter(lock__gt=now).count(),
        failed=Failure.objects.count(),
        oldest_waiting_since=_enqueued_at(oldest) if oldest else None,
    )


def _enqueued_at(item: OrmQ) -> datetime | None:
    started = item.task.get("started")  # set by async_task when it queued the task
    return started if isinstance(started, datetime) else None


def failed_tasks_retry(*, task_ids: list[str]) -> int:
    """Queue each failed task again, once: its failure record is deleted first, and only the
    request that deleted it queues the task, so a double click or two staff at once re-queue
    it a single time. Returns how many were queued."""
    from django_q.tasks import async_task  # the broker's models: load late

    queued = 0
    for task in Failure.objects.filter(pk__in=task_ids):
        with transaction.atomic():
            deleted, _ = Failure.objects.filter(pk=task.pk).delete()
            if not deleted:
                continue
            transaction.on_commit(
                partial(
                    async_task,
                    task.func,
                    *(task.args or ()),
                    hook=task.hook,
                    group=task.group,
                    cluster=task.cluster,
                    **(task.kwargs or {}),
                )
            )
            queued += 1
    return queued


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting"), ("running", "Running")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OrmQ]) -> QuerySet[OrmQ]:
        now = timezone.now()
        if self.value() == "waiting":
            return queryset.filter(_waiting(now))
        if self.value() == "running":
            return queryset.filter(lock__gt=now)
        return queryset


class QueuedTaskAdmin(q_admin.QueueAdmin):  # type: ignore[misc]  # django-q2 is untyped
    list_display = ("id", "func", "name", "group", "state", "waiting_for", "lock")
    list_filter = (StateFilter, "key")
    ordering = ("id",)

    @admin.display(description="State")
    def state(self, item: OrmQ) -> str:
        return "running" if item.lock and item.lock > timezone.now() else "waiting"

    @admin.display(description="Queued for")
    def waiting_for(self, item: OrmQ) -> str:
        since = _enqueued_at(item)
        return timesince(since) if since else "—"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        now = timezone.now()
        title = f"Queued tasks: {queue_overview(now=now).headline(now)}"
        response: HttpResponse = super().changelist_view(
            request, {**(extra_context or {}), "title": title}
        )
        return response


class FailedTaskAdmin(q_admin.FailAdmin):  # type: ignore[misc]  # django-q2 is untyped
    actions = ("retry",)
    ordering = ("-stopped",)

    @admin.action(description="Retry (queue again, once)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Failure]) -> None:
        count = failed_tasks_retry(task_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Queued {count} failed tasks again.")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        now = timezone.now()
        title = f"Failed tasks — the queue: {queue_overview(now=now).headline(now)}"
        response: HttpResponse = super().changelist_view(
            request, {**(extra_context or {}), "title": title}
        )
        return response


class ScheduleWithNextRunAdmin(q_admin.ScheduleAdmin):  # type: ignore[misc]  # django-q2 is untyped
    list_display = (
        "name",
        "func",
        "schedule_type",
        "minutes",
        "next_run",
        "next_run_in",
        "get_last_run",
        "get_success",
    )
    list_display_links = ("name",)
    ordering = ("next_run",)

    @admin.display(description="Next run", ordering="next_run")
    def next_run_in(self, schedule: Schedule) -> str:
        if schedule.next_run is None:
            return "—"
        now = timezone.now()
        if schedule.next_run <= now - timedelta(seconds=1):
            return f"due {timesince(schedule.next_run, now)} ago"
        return f"in {timeuntil(schedule.next_run, now)}"


for model, model_admin in (
    (OrmQ, QueuedTaskAdmin),
    (Failure, FailedTaskAdmin),
    (Schedule, ScheduleWithNextRunAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
