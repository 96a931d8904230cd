"""Alerts and the queue in the admin: rules are checked as they are saved, the queue shows
what waits and for how long, and a failed task is retried exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Task
from django_q.signing import SignedPackage

from aisystem.models import AlertRule
from tests.factories import ChatFactory

pytestmark = pytest.mark.django_db


def rule_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "ops",
        "enabled": "on",
        "event_types": ["breaker.opened"],
        "match_data": "{}",
        "destination": "email",
        "chat": "",
        "email_to": "ops@example.com",
        "webhook": "",
        "dedup_minutes": "15",
    }
    return {**data, **overrides}


def add_rule(client: Any, **overrides: Any) -> Any:
    return client.post(reverse("admin:aisystem_alertrule_add"), rule_form(**overrides))


def test_a_valid_rule_is_saved(staff_client: Any) -> None:
    response = add_rule(staff_client, event_types=["breaker.opened", "credential.all_cooling"])

    assert response.status_code == 302
    rule = AlertRule.objects.get(name="ops")
    assert rule.event_types == ["breaker.opened", "credential.all_cooling"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"event_types": ["gate.allowed"]}, "Select a valid choice"),
        ({"destination": "telegram_chat", "email_to": ""}, "Choose the Telegram chat"),
        ({"email_to": "not-an-address"}, "is not an e-mail address"),
        ({"match_data": "[1]"}, "A JSON object"),
    ],
    ids=["internal type", "no chat", "bad address", "match data not an object"],
)
def test_an_incomplete_rule_is_refused_saying_why(
    staff_client: Any, overrides: dict[str, Any], message: str
) -> None:
    response = add_rule(staff_client, **overrides)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AlertRule.objects.filter(name="ops").exists()


def test_a_telegram_rule_needs_only_its_chat(staff_client: Any) -> None:
    chat = ChatFactory(transport="telegram")

    response = add_rule(staff_client, destination="telegram_chat", email_to="", chat=chat.pk)

    assert response.status_code == 302
    assert AlertRule.objects.get(name="ops").chat == chat


def test_the_alert_history_opens(staff_client: Any) -> None:
    assert staff_client.get(reverse("admin:aisystem_alert_changelist")).status_code == 200


def queue(func: str, *, started: Any, lock: Any = None) -> OrmQ:
    payload = SignedPackage.dumps({"id": func, "name": func, "func": func, "started": started})
    item: OrmQ = OrmQ.objects.create(key="aisystem", payload=payload, lock=lock)
    return item


def test_the_queue_page_shows_waiting_running_and_the_oldest_wait(staff_client: Any) -> None:
    now = timezone.now()
    queue("math.floor", started=now - timedelta(minutes=7))
    queue("math.ceil", started=now - timedelta(minutes=1))
    queue("math.sqrt", started=now, lock=now + timedelta(minutes=5))

    page = staff_client.get(reverse("admin:django_q_ormq_changelist")).content.decode()

    assert "Queued tasks: 2 waiting (the oldest for 7\xa0minutes), 1 running, 0 failed" in page
    assert "running" in page and "waiting" in page


def failed_task() -> Task:
    task: Task = Task.objects.create(
        id="f" * 32,
        name="broken",
        func="math.sqrt",
        args=(-1,),
        kwargs={},
        started=timezone.now(),
        stopped=timezone.now(),
        success=False,
        result="math domain error",
    )
    return task


def test_retrying_a_failed_task_queues_it_exactly_once(
    staff_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    task = failed_task()
    url = reverse("admin:django_q_failure_changelist")
    form = {"action": "retry", "_selected_action": [task.pk]}

    with django_capture_on_commit_callbacks(execute=True):
        first = staff_client.post(url, form, follow=True)
        staff_client.post(url, form, follow=True)  # a double click

    assert "Queued 1 failed tasks again." in first.content.decode()
    assert [item.func() for item in OrmQ.objects.all()] == ["math.sqrt"]
    assert OrmQ.objects.get().args() == (-1,)
    assert not Failure.objects.exists()


def test_the_failed_tasks_page_shows_the_queue_too(staff_client: Any) -> None:
    failed_task()

    page = staff_client.get(reverse("admin:django_q_failure_changelist")).content.decode()

    assert "0 waiting, 0 running, 1 failed" in page


def test_the_schedules_show_their_next_run(staff_client: Any) -> None:
    Schedule.objects.create(
        name="soon", func="math.floor", args="1", next_run=timezone.now() + timedelta(minutes=3)
    )

    page = staff_client.get(reverse("admin:django_q_schedule_changelist")).content.decode()

    assert "in 2\xa0minutes" in page or "in 3\xa0minutes" in page
