"""Outgoing webhooks, per Standard Webhooks: signed POSTs of the public events.

How the parts fit, and why no event is lost:

1. **Fan-out, in the event's transaction.** ``aisystem.events.events_record`` writes a pending
   ``WebhookDelivery`` for each matching subscription in the same transaction as the ``Event``
   (a transactional outbox). A scan of new events with a cursor was the alternative, but ids
   on PostgreSQL commit out of order, so a cursor can pass an id that commits later and skip
   that event for good; a delivery row written with its event cannot be skipped.
2. **Jobs.** After commit a django-q2 job per delivery (``aisystem.tasks.webhook_deliver``)
   makes the first attempt at once. ``webhook_deliveries_sweep`` (a schedule, every minute)
   queues jobs for whatever is due: retries, deliveries whose job was never queued, and
   deliveries whose worker died mid-send.
3. **Claiming** (``delivery``): a conditional UPDATE wins each attempt for one worker and
   gives it a lease; a killed worker's lease runs out and the delivery is sent again with the
   same ``webhook-id``. At least once, with a stable id the receiver can deduplicate on.
4. **Safety** (``safety``, ``http``): http(s) only, public addresses only (unless
   ``AISYSTEM_WEBHOOK_ALLOW_PRIVATE``), checked when saved and again at connect time on the
   address actually connected to; 10 s timeouts; redirects are failures, never followed.
5. **Signing** (``signing``): the ``standardwebhooks`` library; both secrets sign during a
   rotation's overlap.

Each attempt is also an ``ExternalCall`` (service "webhook", no body).
"""
