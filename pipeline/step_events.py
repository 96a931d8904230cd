"""The events each pipeline step emits, built from the step's values (no I/O here).

The store and the processor record them in batches (``aisystem.events.events_record``); the
live feed shows them. They carry previews of message text, never a secret.
"""

from __future__ import annotations

from decimal import Decimal

from aisystem.events import PendingEvent, preview
from aisystem.models import Message
from pipeline.types import (
    AccessDecision,
    AgentResponse,
    DeliveryResult,
    InboundMessage,
    MessageContext,
    ProcessingPlan,
)


def received_event(message: InboundMessage, inbound: Message) -> PendingEvent:
    who = f"@{message.sender_username}" if message.sender_username else message.sender_name
    return PendingEvent(
        kind="message.received",
        summary=f"{inbound.get_kind_display()} from {who or message.sender_id}",
        data={
            "kind": inbound.kind,
            "text": preview(inbound.text),
            "chat_type": message.chat_type,
            "edited": message.is_edited,
            "catch_up": message.is_catch_up,
        },
    )


BUDGET_REASONS = frozenset({"token_budget_exceeded", "cost_budget_exceeded"})


def gate_event(decision: AccessDecision) -> PendingEvent:
    """``gate.allowed`` (internal), or the public ``budget.exceeded`` / ``access.denied``."""
    if decision.allowed:
        return PendingEvent(kind="gate.allowed", summary="Allowed", data={"rule": decision.rule_id})
    return PendingEvent(
        kind="budget.exceeded" if decision.reason in BUDGET_REASONS else "access.denied",
        summary=f"Denied: {decision.reason.replace('_', ' ')}",
        level="warning",
        data={
            "reason": decision.reason,
            "rule": decision.rule_id,
            "notified": bool(decision.notice),
        },
    )


def context_event(context: MessageContext) -> PendingEvent:
    return PendingEvent(
        kind="context.built",
        summary=f"Workspace {context.workspace.slug}, {len(context.history)} earlier turns",
        data={
            "workspace": context.workspace.slug,
            "history": len(context.history),
            "history_dropped": context.history_dropped,
            "conversation": context.conversation_id,
        },
    )


def route_event(plan: ProcessingPlan) -> PendingEvent:
    what = f"/{plan.command}" if plan.command else plan.message_type
    return PendingEvent(
        kind="route.planned",
        summary=f"{what} → {plan.handler}" + (f" ({plan.reason})" if plan.reason else ""),
        data={
            "type": plan.message_type,
            "handler": plan.handler,
            "model": plan.model,
            "stream": plan.stream,
            "priority": plan.priority,
            "reason": plan.reason,
        },
    )


def agent_event(response: AgentResponse) -> PendingEvent:
    level = "info" if response.outcome in ("ok", "cancelled") else "error"
    return PendingEvent(
        kind=f"agent.{response.outcome}",
        summary=(
            f"{response.model or 'Claude'}: {response.input_tokens}+{response.output_tokens} tokens"
            if response.outcome == "ok"
            else f"Claude {response.outcome}"
        ),
        level=level,
        data={
            "model": response.model,
            "input_tokens": response.input_tokens,
            "output_tokens": response.output_tokens,
            "cost_usd": str(response.cost_usd),
            "first_text_ms": response.first_text_ms,
            "tools": [call.name for call in response.tool_calls],
            "error": preview(response.error),
        },
    )


def done_event(
    *,
    status: str,
    reason: str,
    reply: str,
    delivery: DeliveryResult | None,
    timings: dict[str, float],
    cost_usd: Decimal,
) -> PendingEvent:
    delivered = delivery.delivered if delivery else False
    return PendingEvent(
        kind=f"message.{status}",
        summary=f"{status.capitalize()}"
        + (", delivered" if delivered else "")
        + f" in {timings.get('total', 0):.0f} ms",
        level="info" if status in ("answered", "ignored") else "warning",
        data={
            "status": status,
            "reason": reason,
            "delivered": delivered,
            "parts": delivery.parts if delivery else 0,
            "reply": preview(reply),
            "timings_ms": dict(timings),
            "cost_usd": str(cost_usd),
        },
    )
