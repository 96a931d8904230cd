"""From events to alerts: claimed in the events' transaction, sent by a job after commit.

``alerts_enqueue`` runs inside ``events_record``: it must be cheap (one query for the enabled
rules when an event could alert) and it must never raise. Its work happens in a savepoint, so
whatever goes wrong rolls back the alerts alone and the caller's transaction carries on.

De-duplication is a claim on ``Alert.dedup_key`` (rule, type, subject), unique while set:
the first alert of a window inserts it; any later event in the window, from this process or
another, collides and adds one to ``suppressed`` instead. A window's key is cleared once it
has passed (by the next claim) or when the alert is resolved, so a new incident after a
"resolved" alerts at once.

Sending (``alerts_deliver``) claims each alert with a conditional update (pending → sending),
so a job and the watchdog's sweep never both send it. At most once: a worker killed mid-send
leaves the alert "sending", visible in the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from aisystem.alerts.destinations import AlertMessage, AlertSendError, alert_message_send
from aisystem.alerts.ports import OutboxEnqueue
from aisystem.alerts.rules import (
    ALERTABLE_EVENT_TYPES,
    RESOLVES,
    RuleSpec,
    alert_subject,
    rule_kinds,
    rule_specs,
)
from aisystem.models import Alert, AlertRule, AlertState, Event

# The events after which a condition is checked (``aisystem.alerts.conditions``), and the type
# a rule must name for the check to be worth a job.
CONDITION_TRIGGERS = {
    "credential.cooling": "credential.all_cooling",
    "message.answered": "budget.warning",
}
_WATCHED = frozenset(ALERTABLE_EVENT_TYPES) | RESOLVES.keys() | CONDITION_TRIGGERS.keys()
SWEEP_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 200

logger = logging.getLogger(__name__)


def alerts_enqueue(rows: Sequence[Event]) -> None:
    """Claim the alerts and resolutions ``rows`` (stored events) cause, in the caller's
    transaction, and queue their sending for after commit. Never raises."""
    watched = [row for row in rows if row.kind in _WATCHED]
    if not watched:
        return
    try:
        named = rule_kinds()
        watched = [row for row in watched if _may_matter(row.kind, named)]
        if not watched:
            return
        with transaction.atomic():
            alert_ids, checks = _claim(watched)
    except Exception:
        logger.exception("alerts: could not claim alerts for %d event(s)", len(watched))
        return
    if alert_ids:
        transaction.on_commit(partial(_hand_over, "aisystem.tasks.alerts_deliver", alert_ids))
    if checks:
        transaction.on_commit(partial(_hand_over, "aisystem.tasks.alerts_check", checks))


def _may_matter(kind: str, named: frozenset[str]) -> bool:
    """Whether an event of ``kind`` could alert, resolve or trigger a check, given the types
    enabled rules name (closing events always look: a rule may have been switched off since
    its alert went out)."""
    return kind in named or kind in RESOLVES or CONDITION_TRIGGERS.get(kind) in named


def _claim(rows: Sequence[Event]) -> tuple[list[int], list[int]]:
    specs = rule_specs(
        list(
            AlertRule.objects.filter(enabled=True).values_list(
                "pk", "event_types", "match_data", "dedup_minutes"
            )
        )
    )
    named = {kind for spec in specs for kind in spec.event_types}
    alert_ids: list[int] = []
    checks: list[int] = []
    for row in rows:
        for spec in specs:
            if spec.matches(row.kind, row.data):
                alert_id = _claim_window(spec, row)
                if alert_id is not None:
                    alert_ids.append(alert_id)
        if row.kind in RESOLVES:
            alert_ids.extend(_resolve(row))
        if CONDITION_TRIGGERS.get(row.kind) in named:
            checks.append(row.pk)
    return list(dict.fromkeys(alert_ids)), checks


def _claim_window(spec: RuleSpec, row: Event) -> int | None:
    """A new pending alert, or None when the window is taken (counted as suppressed)."""
    subject = alert_subject(row.kind, row.data)
    key = f"{spec.pk}:{row.kind}:{subject}"
    now = row.created_at
    Alert.objects.filter(dedup_key=key, window_ends_at__lte=now).update(dedup_key=None)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule_id=spec.pk,
                event=row,
                kind=row.kind,
                subject=subject,
                summary=row.summary[:255],
                dedup_key=key,
                window_ends_at=now + timedelta(minutes=spec.dedup_minutes),
                created_at=now,
            )
    except IntegrityError:
        Alert.objects.filter(dedup_key=key).update(suppressed=F("suppressed") + 1)
        return None
    return alert.pk


def _resolve(row: Event) -> list[int]:
    """Resolve the open alerts ``row`` answers; the newest of each rule gets a follow-up.
    Each is won by a conditional update, so a closing event seen twice resolves once."""
    opened = RESOLVES[row.kind]
    subject = alert_subject(opened, row.data)
    open_alerts = list(
        Alert.objects.filter(kind=opened, subject=subject, resolved_at=None)
        .order_by("rule_id", "-created_at", "-id")
        .values_list("pk", "rule_id", "state")
    )
    follow_ups: list[int] = []
    seen_rules: set[int] = set()
    for pk, rule_id, state in open_alerts:
        newest = rule_id not in seen_rules
        seen_rules.add(rule_id)
        told = state not in (AlertState.FAILED, AlertState.SKIPPED)
        follow = newest and told
        won = Alert.objects.filter(pk=pk, resolved_at=None).update(
            resolved_at=row.created_at,
            resolved_by=row,
            dedup_key=None,
            resolution_state=AlertState.PENDING if follow else AlertState.SKIPPED,
        )
        if won and follow:
            follow_ups.append(pk)
    return follow_ups


def _hand_over(func: str, ids: list[int]) -> None:
    """Queue the job; if the broker fails, the watchdog's sweep sends pending alerts."""
    from django_q.tasks import async_task  # the broker's models: load late

    try:
        async_task(func, ids, group="alerts")
    except Exception:
        logger.warning("alerts: could not queue %s; the watchdog will", func, exc_info=True)


# --- Sending --------------------------------------------------------------------------------


def alerts_deliver(*, alert_ids: Sequence[int], outbox_enqueue: OutboxEnqueue) -> int:
    """Send each alert, then its "resolved" follow-up, that nobody else is sending. Returns
    how many messages went out. A destination's failure is recorded on the alert, never
    raised (the job must not fail, or its ``job.failed`` would alert again)."""
    sent = 0
    for alert_id in alert_ids:
        sent += _deliver_alert(alert_id, outbox_enqueue)
        sent += _deliver_resolution(alert_id, outbox_enqueue)
    return sent


def alerts_deliver_pending(
    *, outbox_enqueue: OutboxEnqueue, now: datetime | None = None, limit: int = SWEEP_BATCH
) -> int:
    """Send what a lost hand-over left pending for over a minute (the watchdog runs it)."""
    cutoff = (now or timezone.now()) - SWEEP_AFTER
    due = Q(state=AlertState.PENDING) | Q(
        resolution_state=AlertState.PENDING,
        state__in=(AlertState.SENT, AlertState.FAILED, AlertState.SKIPPED),
    )
    ids = list(
        Alert.objects.filter(due, created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    return alerts_deliver(alert_ids=ids, outbox_enqueue=outbox_enqueue)


def _deliver_alert(alert_id: int, outbox_enqueue: OutboxEnqueue) -> int:
    if not Alert.objects.filter(pk=alert_id, state=AlertState.PENDING).update(
        state=AlertState.SENDING
    ):
        return 0
    # The join finds no rule only for an orphan (see ``Alert.rule``).
    alert = Alert.objects.select_related("rule", "event").filter(pk=alert_id).first()
    if alert is None:
        Alert.objects.filter(pk=alert_id).update(state=AlertState.FAILED, error="rule deleted")
        return 0
    state, error = _send(alert, AlertMessage.for_alert(alert), outbox_enqueue)
    Alert.objects.filter(pk=alert_id).update(
        state=state, error=error, sent_at=timezone.now() if state == AlertState.SENT else None
    )
    return int(state == AlertState.SENT)


def _deliver_resolution(alert_id: int, outbox_enqueue: OutboxEnqueue) -> int:
    rows = Alert.objects.filter(pk=alert_id, resolution_state=AlertState.PENDING)
    # Nothing reached staff, so there is nothing to resolve for them.
    rows.filter(state__in=(AlertState.FAILED, AlertState.SKIPPED)).update(
        resolution_state=AlertState.SKIPPED
    )
    if not rows.filter(state=AlertState.SENT).update(resolution_state=AlertState.SENDING):
        return 0
    alert = Alert.objects.select_related("rule", "resolved_by").filter(pk=alert_id).first()
    if alert is None:  # an orphan: its rule was deleted
        rows.update(resolution_state=AlertState.FAILED)
        return 0
    state, error = _send(alert, AlertMessage.for_resolution(alert), outbox_enqueue)
    Alert.objects.filter(pk=alert_id).update(
        resolution_state=state,
        resolution_sent_at=timezone.now() if state == AlertState.SENT else None,
        error=error or alert.error,
    )
    return int(state == AlertState.SENT)


def _send(alert: Alert, message: AlertMessage, outbox_enqueue: OutboxEnqueue) -> tuple[str, str]:
    try:
        delivered = alert_message_send(alert.rule, message, outbox_enqueue=outbox_enqueue)
    except Exception as exc:
        logger.warning("alerts: sending alert %s failed", alert.pk, exc_info=True)
        return AlertState.FAILED, f"{type(exc).__name__}: {exc}"[:255]
    if not delivered:
        return AlertState.SKIPPED, "nobody to send to"
    return AlertState.SENT, ""


def alert_rule_test_send(*, rule_id: int, outbox_enqueue: OutboxEnqueue) -> bool:
    """Send a test message through a Telegram or e-mail rule now, so staff see the way out
    works; False if there was nobody to send to. Raises ``AlertSendError`` for a webhook
    rule (its endpoint has "Send a test event"), or whatever the destination raises."""
    rule = AlertRule.objects.select_related("chat").get(pk=rule_id)
    if rule.destination == AlertRule.Destination.WEBHOOK:
        raise AlertSendError("Use “Send a test event” on the webhook itself.")
    now = timezone.now()
    text = f"🔔 Test alert from aisystem: rule “{rule.name}” reaches you."
    message = AlertMessage(
        f"[aisystem] Test alert: {rule.name}", text, None, f"alert-test:{rule.pk}:{now.timestamp()}"
    )
    return alert_message_send(rule, message, outbox_enqueue=outbox_enqueue)
