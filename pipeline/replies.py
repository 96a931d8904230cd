"""What the processor's handlers produce (``Reply``), before it is delivered and recorded, and
the plain-value rules that turn an agent's outcome and a delivery into a message status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aisystem.models import MessageKind, MessageStatus
from pipeline.agent import FAILED_REPLY
from pipeline.types import AgentResponse, DeliveryResult, ProcessingStatus

DEFERRED_REPLY = (
    "The assistant is temporarily unavailable. I've kept your message and will answer "
    "as soon as it's back."
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
