"""What the processor's handlers produce (``Reply``), before it is delivered and recorded, and
the plain-value rules that turn an agent's outcome and a delivery into a message status.

The wording of the two ways an answer does not happen lives here, one text each:

* ``DEFERRED_REPLY`` for every deferral, whatever kept Claude from answering (its breaker
  open, no usable key, or overload, 5xx, timeouts and connection errors after every retry):
  the message is kept and answered once Claude is back, as a new message (see
  ``pipeline.deferred``);
* ``FAILED_REPLY`` for a request Claude refused as invalid (400, 404, 413), which would fail
  again however often it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aisystem.models import MessageKind, MessageStatus
from pipeline.types import AgentResponse, DeliveryResult, ProcessingStatus

DEFERRED_REPLY = (
    "The assistant is temporarily unavailable. I've kept your message and will answer "
    "as soon as it's back."
)
FAILED_REPLY = (
    "Sorry, I can't answer this message: Claude refused the request as invalid, so sending it "
    "again won't help. Try rephrasing or shortening it, or sending it without attachments; "
    "if it keeps happening, please tell whoever runs this assistant."
)
STOPPED_NOTE = "_(stopped)_"
EMPTY_ANSWER = "I don't have an answer to that."


@dataclass(frozen=True)
class Reply:
    """What the handler produced, before recording."""

    text: str
    status: str
    reason: str = ""
    kind: str = MessageKind.TEXT
    agent: AgentResponse | None = None
    delivery: DeliveryResult | None = None


def with_delivery(reply: Reply, delivery: DeliveryResult) -> Reply:
    if delivery.delivered or not reply.text:
        return Reply(reply.text, reply.status, reply.reason, reply.kind, reply.agent, delivery)
    if delivery.retry_after_seconds is not None:  # rescheduled through the outbox
        return Reply(reply.text, reply.status, "rescheduled", reply.kind, reply.agent, delivery)
    return Reply(
        reply.text, MessageStatus.FAILED, "delivery_failed", reply.kind, reply.agent, delivery
    )


def retry_at(delivery: DeliveryResult | None, now: datetime) -> datetime | None:
    if delivery is None or delivery.delivered or delivery.retry_after_seconds is None:
        return None
    return now + timedelta(seconds=delivery.retry_after_seconds)


def agent_reply(response: AgentResponse) -> Reply:
    """The reply for the agent's outcome.

    A deferral replaces whatever part of the answer had already streamed: the processor's
    final delivery edits the streamed message(s) into ``DEFERRED_REPLY``, so no half answer is
    left standing as if it were whole. The complete answer arrives later as a new message
    (on REST, a new ``out`` item of the chat's history), written from scratch by the
    deferred job."""
    if response.outcome == "ok":
        return Reply(response.text.strip() or EMPTY_ANSWER, MessageStatus.ANSWERED, agent=response)
    if response.outcome == "cancelled":
        text = f"{response.text}\n\n{STOPPED_NOTE}" if response.text.strip() else "Stopped."
        return Reply(text, MessageStatus.ANSWERED, "cancelled", agent=response)
    if response.outcome == "unavailable":
        return Reply(DEFERRED_REPLY, MessageStatus.DEFERRED, "claude_unavailable", agent=response)
    return Reply(FAILED_REPLY, MessageStatus.FAILED, "claude_failed", agent=response)


def result_status(status: str) -> ProcessingStatus:
    if status == MessageStatus.ANSWERED:
        return "answered"
    if status == MessageStatus.DEFERRED:
        return "deferred"
    if status == MessageStatus.IGNORED:
        return "ignored"
    return "failed"
