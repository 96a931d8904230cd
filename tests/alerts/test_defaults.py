"""The shipped rules: created after migrate, once, e-mailing the superusers; switched off while
there is nobody to e-mail."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from aisystem.alerts.defaults import DEFAULT_RULES, alert_rules_defaults_ensure
from aisystem.models import AlertRule

pytestmark = pytest.mark.django_db


def test_migrate_shipped_the_default_rules_switched_off_without_a_superuser() -> None:
    rules = {rule.name: rule for rule in AlertRule.objects.all()}

    assert set(rules) >= {rule.name for rule in DEFAULT_RULES}
    assert not any(rules[rule.name].enabled for rule in DEFAULT_RULES)
    bridge = rules["Telegram bridge heartbeat missing for 2 minutes"]
    assert bridge.match_data == {"reason": "heartbeat missing"}
    assert rules["A budget at 80 % and at 100 %"].event_types == [
        "budget.warning",
        "budget.exceeded",
    ]


def test_the_defaults_are_created_once_and_staff_edits_stay() -> None:
    AlertRule.objects.filter(name="Background jobs failing").update(dedup_minutes=60)

    call_command("migrate", verbosity=0)

    assert AlertRule.objects.filter(name="Background jobs failing").get().dedup_minutes == 60
    assert AlertRule.objects.count() == len(DEFAULT_RULES)


def test_with_a_superuser_to_tell_new_defaults_start_switched_on(admin_user: Any) -> None:
    AlertRule.objects.all().delete()

    created = alert_rules_defaults_ensure()

    assert created == len(DEFAULT_RULES)
    assert all(AlertRule.objects.values_list("enabled", flat=True))
    assert set(AlertRule.objects.values_list("destination", flat=True)) == {"email"}
    assert set(AlertRule.objects.values_list("email_to", flat=True)) == {""}
