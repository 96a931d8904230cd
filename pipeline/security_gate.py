"""Step 1, the security gate: the one place that decides whether a message is handled.

The gate decides; it does no I/O. The store gathers the facts (rules, the sender, counter
results, today's usage) and calls these methods in order:

1. ``screen``: own, stale or oversized messages, before anything is written;
2. ``validate_access``: ordered rules, deny by default, blocked identities silently;
3. ``check_rate``: the per-identity and per-chat counters just incremented;
4. ``check_budget``: today's tokens and cost against the daily budgets.

Duplicates are found by the store (the dedup key is a unique constraint, so the database
decides even between processes) and turned into a decision by ``duplicate``. After the gate
nothing re-checks access.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from aisystem.services.access import AccessSubject, RuleSpec, access_evaluate
from pipeline.types import AccessDecision, InboundMessage

# Short and non-revealing: they never say which rule or limit, or that a rule exists.
NOT_AVAILABLE = "Sorry, this assistant isn't available to you."
SLOW_DOWN = "You're sending messages faster than I can answer. Please try again in {wait}."
OUT_OF_BUDGET = "You've reached today's usage limit. It resets at midnight."
TOO_LONG = "That message is too long for me ({length:,} characters; the limit is {limit:,})."

# Characters that show nothing on their own, beyond whitespace and the control (Cc) and format
# (Cf: zero-width space and joiners, the BOM, bidi controls) categories: Unicode's default-
# ignorable fillers and variation selectors, which a text made only of them leaves empty.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})
INVISIBLE_FILLERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(chr(code) for code in range(0xFE00, 0xFE10))
    + "".join(chr(code) for code in range(0xE0100, 0xE01F0))
)


def is_invisible(char: str) -> bool:
    """True for a character that shows nothing on its own: whitespace, a control or format
    character, or a default-ignorable filler (see ``is_blank``)."""
    return (
        char.isspace()
        or char in INVISIBLE_FILLERS
        or unicodedata.category(char) in _INVISIBLE_CATEGORIES
    )


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: it is empty or made only of whitespace, zero-width
    and format characters (U+200B, U+FEFF, bidi controls, …) and other invisible ones. The
    pipeline treats such text as no text at all; every transport's blank check is this one."""
    return all(is_invisible(char) for char in text)


@dataclass(frozen=True)
class RateCheck:
    """A counter just incremented for this message: ``scope`` is "identity" or "chat"."""

    scope: str
    allowed: bool
    retry_after_seconds: int
    reset_at: datetime | None = None


@dataclass(frozen=True)
class BudgetCheck:
    """Today's usage and the effective daily budgets (None: unlimited)."""

    tokens_used: int
    cost_used: Decimal
    token_budget: int | None = None
    cost_budget: Decimal | None = None


class SecurityGate:
    def __init__(self, *, stale_after_seconds: int, max_input_chars: int) -> None:
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.max_input_chars = max_input_chars

    def screen(self, message: InboundMessage, *, now: datetime) -> AccessDecision | None:
        """A decision for messages that must not go further, or None to carry on."""
        if message.is_own:
            return AccessDecision(allowed=False, reason="own_message")
        if not message.is_catch_up and now - message.sent_at > self.stale_after:
            return AccessDecision(allowed=False, reason="stale")
        if len(message.text) > self.max_input_chars:
            return AccessDecision(
                allowed=False,
                reason="input_too_long",
                notice=TOO_LONG.format(length=len(message.text), limit=self.max_input_chars),
            )
        return None

    @staticmethod
    def duplicate() -> AccessDecision:
        return AccessDecision(allowed=False, reason="duplicate")

    @staticmethod
    def validate_access(subject: AccessSubject, rules: Sequence[RuleSpec]) -> AccessDecision:
        """Allowed only by a matching allow rule. A denial carries a notice unless the rule is
        silent or the identity is blocked; the store sends it at most once per window."""
        verdict = access_evaluate(rules, subject)
        if verdict.allowed:
            return AccessDecision(allowed=True, reason="allowed_by_rule", rule_id=verdict.rule_id)
        return AccessDecision(
            allowed=False,
            reason=verdict.reason,
            rule_id=verdict.rule_id,
            notice="" if verdict.silent else NOT_AVAILABLE,
        )

    @staticmethod
    def check_rate(checks: Sequence[RateCheck]) -> AccessDecision | None:
        """The first exceeded counter rejects the message, with the wait in the notice."""
        for check in checks:
            if check.allowed:
                continue
            return AccessDecision(
                allowed=False,
                reason="rate_limited" if check.scope == "identity" else "chat_rate_limited",
                notice=SLOW_DOWN.format(wait=_human_wait(check.retry_after_seconds)),
                retry_after_seconds=check.retry_after_seconds,
                blocked_until=check.reset_at,
            )
        return None

    @staticmethod
    def check_budget(budget: BudgetCheck) -> AccessDecision | None:
        """Rejects once today's usage has reached a budget (the message that crosses it is
        answered: usage is only known after the reply)."""
        if budget.token_budget is not None and budget.tokens_used >= budget.token_budget:
            return AccessDecision(
                allowed=False, reason="token_budget_exceeded", notice=OUT_OF_BUDGET
            )
        if budget.cost_budget is not None and budget.cost_used >= budget.cost_budget:
            return AccessDecision(
                allowed=False, reason="cost_budget_exceeded", notice=OUT_OF_BUDGET
            )
        return None


def _human_wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
