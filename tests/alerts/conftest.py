"""Fixtures for the alert tests: rules to each destination, events recorded the way the system
records them (committed, so the alert jobs get queued), and those jobs run in this thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from aisystem.events import system_event_emit
from aisystem.models import AlertRule, Event
from aisystem.tasks import alert_ports

Emit = Callable[..., Event]


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """``commit(f, ...)``: run ``f`` and then what it left for after commit, as a real
    commit would (the test's own transaction never commits)."""

    def run(call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


@pytest.fixture
def emit(commit: Callable[..., Any]) -> Emit:
    """``emit("breaker.opened", "summary", service=...)``: a committed system event."""

    def record(kind: str, summary: str = "", **data: object) -> Event:
        event: Event = commit(system_event_emit, kind, summary or kind, **data)
        return event

    return record


def queued(func: str) -> list[tuple[Any, ...]]:
    """The arguments of each queued job of ``func``."""
    return [tuple(item.task["args"]) for item in OrmQ.objects.all() if item.func() == func]


@pytest.fixture
def run_jobs(commit: Callable[..., Any]) -> Callable[[], int]:
    """Run every queued alert job (and those they queue) as a worker would; returns how many."""

    def run() -> int:
        done = 0
        while True:
            items = [
                i
                for i in OrmQ.objects.order_by("id")
                if i.func().startswith("aisystem.tasks.alerts")
            ]
            if not items:
                return done
            for item in items:
                task = item.task
                item.delete()
                commit(import_string(task["func"]), *task["args"], **task["kwargs"])
                done += 1

    return run


@pytest.fixture
def ports() -> Iterator[Any]:
    yield alert_ports()


@pytest.fixture
def email_rule(db: None) -> Callable[..., AlertRule]:
    def make(*kinds: str, **fields: Any) -> AlertRule:
        defaults: dict[str, Any] = {
            "name": f"rule {'+'.join(kinds)}",
            "email_to": "ops@example.com",
        }
        return AlertRule.objects.create(
            event_types=list(kinds),
            destination=AlertRule.Destination.EMAIL,
            **{**defaults, **fields},
        )

    return make
