"""Where an alert goes: one function per destination, one way out each.

* **Telegram**: an outbox item for the rule's chat, which the bridge sends. The idempotency
  key is the alert's, so sending one alert twice queues one message.
* **E-mail**: Django's ``send_mail`` to the rule's addresses, else the superusers'.
* **Webhook**: a ``WebhookDelivery`` of the event itself to the rule's endpoint, signed and
  retried like any other (``aisystem.webhooks``). A delivery per endpoint and event is unique,
  so an endpoint that also subscribes to the type receives the event once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC
from functools import partial

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from aisystem.alerts.ports import OutboxEnqueue
from aisystem.alerts.rules import alert_recipients
from aisystem.models import Alert, AlertRule, WebhookDelivery

EMAIL_SUBJECT_CHARS = 150

Destination = AlertRule.Destination


class AlertSendError(RuntimeError):
    """The destination cannot take the alert (its chat or endpoint is gone, the event
    expired); the message says which."""


@dataclass(frozen=True)
class AlertMessage:
    """One message to staff: ``subject`` for e-mail, ``text`` for every destination,
    ``event_id`` for a webhook (it carries the event itself), ``key`` against repeats."""

    subject: str
    text: str
    event_id: int | None
    key: str

    @classmethod
    def for_alert(cls, alert: Alert) -> AlertMessage:
        when = alert.created_at.astimezone(UTC)
        text = (
            f"🔔 {alert.summary}\n"
            f"Rule “{alert.rule.name}”: {alert.kind} at {when:%Y-%m-%d %H:%M:%S} UTC. "
            f"Repeats are held back for {alert.rule.dedup_minutes} min."
        )
        return cls(
            _subject(f"[aisystem] {alert.summary}"), text, alert.event_id, f"alert:{alert.pk}"
        )

    @classmethod
    def for_resolution(cls, alert: Alert) -> AlertMessage:
        closing = alert.resolved_by.summary if alert.resolved_by else "the condition cleared"
        resolved_at = alert.resolved_at or timezone.now()
        minutes = max(round((resolved_at - alert.created_at).total_seconds() / 60), 0)
        text = (
            f"✅ Resolved: {closing}\n"
            f"It answers “{alert.summary}” (rule “{alert.rule.name}”), open for {minutes} min."
        )
        return cls(
            _subject(f"[aisystem] Resolved: {closing}"),
            text,
            alert.resolved_by_id,
            f"alert:{alert.pk}:resolved",
        )


def alert_message_send(
    rule: AlertRule, message: AlertMessage, *, outbox_enqueue: OutboxEnqueue
) -> bool:
    """Send ``message`` to the rule's destination; False if there was nobody to send to
    (an e-mail rule without addresses while no superuser has one). Raises
    ``AlertSendError``, or whatever the e-mail backend raises."""
    if rule.destination == Destination.TELEGRAM_CHAT:
        if rule.chat is None:
            raise AlertSendError("the rule's Telegram chat no longer exists")
        outbox_enqueue(
            transport=rule.chat.transport,
            chat_pk=rule.chat.pk,
            text=message.text,
            idempotency_key=message.key,
        )
        return True
    if rule.destination == Destination.EMAIL:
        recipients = alert_recipients(rule)
        if not recipients:
            return False
        send_mail(message.subject, message.text, None, recipients)
        return True
    if rule.destination == Destination.WEBHOOK:
        if rule.webhook_id is None:
            raise AlertSendError("the rule's webhook no longer exists")
        if message.event_id is None:
            raise AlertSendError("the event has expired; nothing to deliver")
        _webhook_event_deliver(subscription_id=rule.webhook_id, event_id=message.event_id)
        return True
    raise AlertSendError(f"unknown destination {rule.destination!r}")


def _webhook_event_deliver(*, subscription_id: int, event_id: int) -> None:
    """A delivery of the event to the endpoint (unless it has one) and its job, like the
    fan-out in ``aisystem.events`` makes (which this package may not import: it imports us).
    The webhooks' minutely sweep sends it should the job be lost."""
    delivery, created = WebhookDelivery.objects.get_or_create(
        subscription_id=subscription_id,
        event_id=event_id,
        defaults={"webhook_id": f"msg_{uuid.uuid4().hex}", "next_attempt_at": timezone.now()},
    )
    if created:
        transaction.on_commit(partial(_webhook_job_enqueue, delivery.pk))


def _webhook_job_enqueue(delivery_id: int) -> None:
    from django_q.tasks import async_task  # the broker's models: load late

    async_task("aisystem.tasks.webhook_deliver", delivery_id, group="webhooks")


def _subject(text: str) -> str:
    """An e-mail subject: one line (a header may not contain a newline), kept short."""
    line = " ".join(text.split())
    return line if len(line) <= EMAIL_SUBJECT_CHARS else line[: EMAIL_SUBJECT_CHARS - 1] + "…"
