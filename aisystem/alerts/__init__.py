"""Alerts for staff: the event stream, filtered by ``AlertRule``, to a chat, e-mail or webhook.

How the parts fit:

1. **Claimed with the event** (``dispatch.alerts_enqueue``). ``aisystem.events.events_record``
   calls it in the events' own transaction: each matching rule gets an ``Alert`` row, unless
   one for the same rule, type and subject is still inside its window (``dedup_key`` is
   unique, so of two processes only one claims it; the other counts as suppressed). A closing
   event (``breaker.closed``, ``bridge.up``, ``credential.available``) resolves the open
   alerts it answers. A failure here is logged and rolled back to a savepoint: an alert never
   fails the message whose event triggered it.
2. **Sent by a job** (``dispatch.alerts_deliver``, a django-q2 task queued after commit):
   Telegram through the bridge's outbox, e-mail through Django's ``send_mail``, a webhook as
   a delivery of the event itself. The minutely watchdog sends whatever a lost hand-over left.
3. **Conditions no single event states** (``conditions``, ``watchdog``): every key cooling
   down, a budget at 80 %, a bridge whose heartbeat stopped. Each flips an ``AlertCondition``
   with a conditional update and emits its event once per change.

``aisystem.events`` imports this package, so nothing here imports what imports
``aisystem.events`` (the services, the selectors, ``aisystem.webhooks``): the few calls out
(emit an event, queue an outbox item, read today's usage) are ``ports.AlertPorts``, which
``aisystem.tasks`` builds.
"""
