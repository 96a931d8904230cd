"""Background jobs (django-q2). Jobs take ids or nothing, and call one service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aisystem.services.rate_limits import rate_counters_purge

if TYPE_CHECKING:
    from aisystem.alerts.ports import AlertPorts


def purge_rate_counters() -> int:
    return rate_counters_purge()


def answer_deferred_messages() -> int:
    from pipeline.deferred import deferred_answer

    return deferred_answer()


def answer_in_background(message_pk: int) -> str:
    from pipeline.background import background_answer

    return background_answer(message_pk)


def sweep_orphaned_messages() -> int:
    from pipeline.orphans import orphans_sweep

    return orphans_sweep()


def sweep_background_answers() -> int:
    from pipeline.background import background_sweep

    return background_sweep()


def deliver_due_reminders() -> int:
    from pipeline.reminders.delivery import reminders_deliver_due

    return reminders_deliver_due()


def refresh_integration_tokens() -> int:
    from aisystem.integrations.tokens import tokens_refresh_due

    return tokens_refresh_due()


def purge_connect_links() -> int:
    from aisystem.integrations.links import connect_links_purge

    return connect_links_purge()


def webhook_deliver(delivery_id: int) -> str | None:
    from aisystem.webhooks.delivery import webhook_delivery_attempt

    return webhook_delivery_attempt(delivery_id=delivery_id)


def webhook_deliveries_due() -> int:
    from aisystem.webhooks.delivery import webhook_deliveries_sweep

    return webhook_deliveries_sweep()


def alerts_deliver(alert_ids: list[int]) -> int:
    from aisystem.alerts.dispatch import alerts_deliver as deliver

    return deliver(alert_ids=alert_ids, outbox_enqueue=alert_ports().outbox_enqueue)


def alerts_check(event_ids: list[int]) -> int:
    from aisystem.alerts.conditions import conditions_check

    return conditions_check(event_ids=event_ids, ports=alert_ports())


def alerts_watchdog() -> str:
    from aisystem.alerts.watchdog import alerts_watchdog_run

    return repr(alerts_watchdog_run(ports=alert_ports()))


def alert_ports() -> AlertPorts:
    """The services alerts call out to (``aisystem.alerts.ports`` says why they are passed)."""
    from aisystem.alerts.ports import AlertPorts
    from aisystem.events import system_event_emit
    from aisystem.selectors import identity_usage_today
    from aisystem.services.outbox import outbox_enqueue

    return AlertPorts(system_event_emit, outbox_enqueue, identity_usage_today)


def purge_expired_records() -> str:
    from aisystem.services.retention import retention_purge

    purged = retention_purge()
    return (
        f"{purged.messages} messages, {purged.events} events, "
        f"{purged.external_calls} external calls, {purged.webhook_deliveries} webhook deliveries"
    )
