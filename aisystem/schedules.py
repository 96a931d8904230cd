"""The recurring jobs the system needs, created (idempotently) after every migrate."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_migrate
from django.dispatch import receiver

SCHEDULES = {
    "aisystem: purge expired rate counters": {
        "func": "aisystem.tasks.purge_rate_counters",
        "schedule_type": "I",  # django_q.models.Schedule.MINUTES
        "minutes": 10,
    },
    "pipeline: answer deferred messages once Claude is back": {
        "func": "aisystem.tasks.answer_deferred_messages",
        "schedule_type": "I",
        "minutes": 1,
    },
    "pipeline: answer messages whose process died mid-answer (expired leases)": {
        "func": "aisystem.tasks.sweep_orphaned_messages",
        "schedule_type": "I",
        "minutes": 1,
    },
    "pipeline: queue again background answers whose task or worker was lost": {
        "func": "aisystem.tasks.sweep_background_answers",
        "schedule_type": "I",
        "minutes": 1,
    },
    "reminders: deliver due reminders and answer scheduled prompts": {
        "func": "aisystem.tasks.deliver_due_reminders",
        "schedule_type": "I",
        "minutes": 1,
    },
    "integrations: refresh tokens that expire within 10 minutes": {
        "func": "aisystem.tasks.refresh_integration_tokens",
        "schedule_type": "I",
        "minutes": 2,
    },
    "retention: delete old events, external calls and webhook deliveries": {
        "func": "aisystem.tasks.purge_expired_records",
        "schedule_type": "D",  # daily
    },
    "integrations: delete connect links a day past their expiry": {
        "func": "aisystem.tasks.purge_connect_links",
        "schedule_type": "I",
        "minutes": 60,
    },
    "alerts: watch the bridge's heartbeat and the keys, send alerts left pending": {
        "func": "aisystem.tasks.alerts_watchdog",
        "schedule_type": "I",
        "minutes": 1,
    },
    "webhooks: send due retries and deliveries whose worker stopped": {
        "func": "aisystem.tasks.webhook_deliveries_due",
        "schedule_type": "I",
        "minutes": 1,
    },
}


@receiver(post_migrate)
def ensure_schedules(sender: Any, **kwargs: Any) -> None:
    if getattr(sender, "name", "") != "aisystem":
        return
    from django_q.models import Schedule

    for name, fields in SCHEDULES.items():
        Schedule.objects.update_or_create(name=name, defaults=fields)


@receiver(post_migrate)
def ensure_alert_rules(sender: Any, **kwargs: Any) -> None:
    if getattr(sender, "name", "") != "aisystem":
        return
    from aisystem.alerts.defaults import alert_rules_defaults_ensure

    alert_rules_defaults_ensure()
