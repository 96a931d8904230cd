"""The alert rules a new installation ships with, created after every migrate.

Each goes by e-mail to the superusers (the empty address list means "every superuser with an
address, when the alert is sent"). A rule is only created when no rule has its name, so staff
edits stay; to silence a default, switch it off (a deleted one comes back on the next
migrate). Created while no superuser has an address, the rules start switched off: staff
switch them on in the admin once there is somebody to tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aisystem.alerts.rules import rule_kinds_forget, superuser_addresses
from aisystem.models import AlertRule


@dataclass(frozen=True)
class DefaultRule:
    name: str
    event_types: tuple[str, ...]
    match_data: dict[str, object] = field(default_factory=dict)


DEFAULT_RULES = (
    DefaultRule("Claude's circuit breaker opened", ("breaker.opened",)),
    DefaultRule("Every API key is cooling down", ("credential.all_cooling",)),
    DefaultRule(
        "Telegram bridge heartbeat missing for 2 minutes",
        ("bridge.down",),
        {"reason": "heartbeat missing"},
    ),
    DefaultRule("A budget at 80 % and at 100 %", ("budget.warning", "budget.exceeded")),
    DefaultRule("A webhook endpoint was disabled", ("webhook.disabled",)),
    DefaultRule("Background jobs failing", ("job.failed",)),
)


def alert_rules_defaults_ensure() -> int:
    """Create the missing default rules; returns how many. Idempotent."""
    existing = set(AlertRule.objects.values_list("name", flat=True))
    missing = [rule for rule in DEFAULT_RULES if rule.name not in existing]
    if not missing:
        return 0
    enabled = bool(superuser_addresses())
    AlertRule.objects.bulk_create(
        [
            AlertRule(
                name=rule.name,
                event_types=list(rule.event_types),
                match_data=dict(rule.match_data),
                destination=AlertRule.Destination.EMAIL,
                enabled=enabled,
            )
            for rule in missing
        ],
        ignore_conflicts=True,  # another migrate at the same moment
    )
    rule_kinds_forget()  # bulk_create sends no signal
    return len(missing)
