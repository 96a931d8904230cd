"""The metrics each process records, and the functions that record them.

Callers pass plain values; nothing here reads the database. Counters that mirror a row (a
message's outcome, a Claude call's log row, a webhook attempt) are recorded once the
transaction that writes the row commits (``on_commit``), so a rollback counts nothing; a
failure to record is logged, never raised (``robust=True``): a message must not fail over
its metrics.

Label values are closed sets (a step, a transport, a status, an outcome), never an id or a
name someone types, so the number of series stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import partial

from django.db import transaction
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# ``_created`` samples exist only outside multiprocess mode; leave them out in both.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

# The steps of ``ProcessingResult.timings_ms`` that are observed; "command" stands where
# "agent" would for a chat command. "total" and "record" are not steps.
PIPELINE_STEPS = ("gate", "context", "route", "agent", "command", "delivery")
# From well under a millisecond (routing) to the two minutes a Claude call may take.
STEP_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
)
# ``pipeline.claude.store.Fault`` values (and a call the breaker refused) as outcomes.
CLAUDE_OUTCOMES = (
    "ok",
    "error",
    "rate_limited",
    "invalid_key",
    "refused",
    "aborted",
    "breaker_open",
)
TOKEN_KINDS = ("input", "output")
WEBHOOK_OUTCOMES = ("delivered", "failed", "dead", "superseded")
WEBSOCKET_CONSUMERS = ("live", "chat")

pipeline_step_seconds = Histogram(
    "aisystem_pipeline_step_seconds",
    "Time one message spent in each pipeline step.",
    ["step"],
    buckets=STEP_BUCKETS,
)
messages_total = Counter(
    "aisystem_messages",
    "Inbound messages by transport and recorded status (a deferred message that is answered "
    "later counts again, as answered or failed).",
    ["transport", "status"],
)
claude_requests_total = Counter(
    "aisystem_claude_requests",
    "Claude API attempts by outcome; breaker_open counts calls refused without a request.",
    ["outcome"],
)
claude_tokens_total = Counter(
    "aisystem_claude_tokens", "Tokens of Claude API calls, by kind.", ["kind"]
)
cost_usd_total = Counter(
    "aisystem_cost_usd", "US dollars the recorded answers cost, at the configured prices."
)
webhook_deliveries_total = Counter(
    "aisystem_webhook_deliveries",
    "Webhook delivery attempts by outcome (failed: another attempt is scheduled; dead: none "
    "is left; superseded: another worker took the delivery over).",
    ["outcome"],
)
websocket_connections = Gauge(
    "aisystem_websocket_connections",
    "Open WebSocket connections of live processes, by consumer.",
    ["consumer"],
    multiprocess_mode="livesum",
)

# Every series exists from the start, at zero: rate() and alerts need no special case for
# "never happened yet".
for _step in PIPELINE_STEPS:
    pipeline_step_seconds.labels(step=_step)
for _outcome in CLAUDE_OUTCOMES:
    claude_requests_total.labels(outcome=_outcome)
for _kind in TOKEN_KINDS:
    claude_tokens_total.labels(kind=_kind)
for _outcome in WEBHOOK_OUTCOMES:
    webhook_deliveries_total.labels(outcome=_outcome)
for _consumer in WEBSOCKET_CONSUMERS:
    websocket_connections.labels(consumer=_consumer)


def message_observe(*, transport: str, status: str, timings_ms: Mapping[str, float]) -> None:
    """One inbound message's recorded outcome and the steps it went through."""
    messages_total.labels(transport=transport, status=status).inc()
    for step in PIPELINE_STEPS:
        milliseconds = timings_ms.get(step)
        if milliseconds is not None:
            pipeline_step_seconds.labels(step=step).observe(max(float(milliseconds), 0.0) / 1000)


def message_observe_on_commit(
    *, transport: str, status: str, timings_ms: Mapping[str, float], cost_usd: Decimal = Decimal(0)
) -> None:
    """``message_observe`` (and the cost) once the current transaction commits."""
    transaction.on_commit(
        partial(_message_and_cost, transport, status, dict(timings_ms), cost_usd), robust=True
    )


def _message_and_cost(
    transport: str, status: str, timings_ms: Mapping[str, float], cost_usd: Decimal
) -> None:
    message_observe(transport=transport, status=status, timings_ms=timings_ms)
    if cost_usd > 0:
        cost_usd_total.inc(float(cost_usd))


def claude_request_observe(*, outcome: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
    """One Claude API attempt (or a call the breaker refused: ``breaker_open``)."""
    claude_requests_total.labels(outcome=outcome).inc()
    if input_tokens > 0:
        claude_tokens_total.labels(kind="input").inc(input_tokens)
    if output_tokens > 0:
        claude_tokens_total.labels(kind="output").inc(output_tokens)


def webhook_attempt_observe(outcome: str) -> None:
    """One webhook delivery attempt's outcome (one of ``WEBHOOK_OUTCOMES``)."""
    webhook_deliveries_total.labels(outcome=outcome).inc()


def websocket_opened(consumer: str) -> None:
    websocket_connections.labels(consumer=consumer).inc()


def websocket_closed(consumer: str) -> None:
    websocket_connections.labels(consumer=consumer).dec()
