"""A person's own data: ``/usage``, ``/export`` and ``/forget``, as the command executor runs
them (synchronous, over the database).

* ``/usage`` reads the daily usage rollup only (``aisystem.selectors.identity_usage_report``):
  today, the last 7 days and this month, per workspace when there are several, and the
  daily budgets that apply, with how much of each is used.
* ``/export`` builds the person's JSON document (``aisystem.services.data_export``) and hands
  it back as an ``OutboundMedia`` for the transport to send as a file. Only in a chat no one
  else reads: the file holds everything they ever wrote.
* ``/forget`` only asks: it proposes a ``PendingAction`` (``FORGET_ACTION``) that the
  person's /confirm or Confirm button runs (``pipeline.tools.internal``); /cancel or ten
  minutes without an answer drop it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from aisystem.integrations.links import public_url
from aisystem.models import ChatType, Identity, RateLimitPolicy
from aisystem.selectors import Usage, identity_usage_report
from aisystem.services.data_export import EXPORT_MAX_BYTES, EXPORT_MIME_TYPE, identity_export
from aisystem.services.forget import FORGET_ACTION
from pipeline.tools.pending import confirm_prompt, pending_action_propose
from pipeline.types import OutboundMedia

# Chats no one else reads, where a /connect link or /export's file may go: private, browser,
# REST.
PRIVATE_CHAT_TYPES = frozenset({ChatType.PRIVATE, ChatType.WEB, ChatType.API})
EXPORT_PRIVATE_ONLY = "Ask me in a private chat: the file holds everything you wrote to me."
FORGET_SUMMARY = "Delete your messages and what I know about you"
FORGET_EXPLAINED = (
    "This deletes, for good:\n"
    "- your messages to me and my replies, in every chat (other people's messages in groups "
    "stay);\n"
    "- your reminders and scheduled prompts, your time zone, and requests waiting for your "
    "confirmation;\n"
    "- your connected accounts: access revoked, then removed.\n\n"
    "Staff keep a note that you did this, with counts and nothing you wrote. Today's usage "
    "counters stay until midnight, so daily limits still hold; earlier usage stays only as "
    "anonymous totals. You can keep writing to me afterwards: it's a fresh start. Want a "
    "copy first? Send /export."
)


@dataclass(frozen=True)
class ExportReply:
    text: str
    document: OutboundMedia | None = None


@dataclass(frozen=True)
class ForgetReply:
    text: str
    action_id: int


def usage_reply(*, identity_id: int, now: datetime) -> str:
    """``/usage``: the person's usage and budgets, from the rollup."""
    report = identity_usage_report(identity_id=identity_id, now=now)
    lines = [
        f"Your usage (days run midnight to midnight, {settings.TIME_ZONE}):",
        f"- Today: {_usage_line(report.today, detailed=True)}",
        f"- Last 7 days: {_usage_line(report.last_7_days)}",
        f"- This month ({now.strftime('%B')}): {_usage_line(report.this_month)}",
    ]
    if len(report.month_by_workspace) > 1:
        parts = [f"{name}: {_usage_line(usage)}" for name, usage in report.month_by_workspace]
        lines.append("By workspace this month:\n" + "\n".join(f"- {part}" for part in parts))
    policy = _budget_policy(identity_id)
    if policy is not None:
        lines += _budget_lines(policy, report.today)
    return "\n".join(lines)


def _usage_line(usage: Usage, *, detailed: bool = False) -> str:
    if not (usage.messages or usage.failed or usage.tokens):
        return "nothing yet"
    answered = f"{usage.messages:,} message{'' if usage.messages == 1 else 's'} answered"
    if usage.failed:
        answered += f" ({usage.failed:,} failed)"
    tokens = f"{usage.tokens:,} tokens"
    if detailed:
        tokens += f" ({usage.input_tokens:,} in, {usage.output_tokens:,} out)"
    return f"{answered}, {tokens}, about ${usage.cost_usd:.4f}"


def _budget_policy(identity_id: int) -> RateLimitPolicy | None:
    """The policy the gate applies to the person: their own, else their role's."""
    role = Identity.objects.filter(pk=identity_id).values_list("role", flat=True).first()
    policies = list(
        RateLimitPolicy.objects.filter(enabled=True).filter(
            Q(identity_id=identity_id) | Q(identity__isnull=True, chat__isnull=True, role=role)
        )
    )
    return next((p for p in policies if p.identity_id), None) or next(iter(policies), None)


def _budget_lines(policy: RateLimitPolicy, today: Usage) -> list[str]:
    lines = []
    if policy.daily_token_budget is not None:
        share = _percent(today.tokens, policy.daily_token_budget)
        lines.append(
            f"Daily token budget: {today.tokens:,} of {policy.daily_token_budget:,} used "
            f"({share}); it resets at midnight."
        )
    if policy.daily_cost_budget is not None:
        share = _percent(today.cost_usd, policy.daily_cost_budget)
        lines.append(
            f"Daily cost budget: ${today.cost_usd:.4f} of ${policy.daily_cost_budget:.2f} "
            f"used ({share})."
        )
    if policy.messages_per_window is not None:
        lines.append(
            f"Rate limit: {policy.messages_per_window} messages per {policy.window_seconds} s."
        )
    return lines


def _percent(used: object, limit: object) -> str:
    used_value, limit_value = float(str(used)), float(str(limit))
    if limit_value <= 0:
        return "all of it"
    return f"{min(999, round(used_value * 100 / limit_value))} %"


def export_reply(*, identity_id: int, chat_type: str, now: datetime) -> ExportReply:
    """``/export``: the document and the words that go with it, only in a chat no one else
    reads. A REST caller gets the address of ``GET /api/v1/users/{user_id}/export`` instead
    (``aisystem.api.export``): a reply there is text that is stored and replayed."""
    if chat_type not in PRIVATE_CHAT_TYPES:
        return ExportReply(text=EXPORT_PRIVATE_ONLY)
    if chat_type == ChatType.API:
        return ExportReply(text=_export_address(identity_id))
    export = identity_export(identity_id=identity_id, now=now)
    text = (
        f"Here is everything I keep about you, as a JSON file: {export.messages_total:,} "
        f"messages in {export.chats:,} chat{'' if export.chats == 1 else 's'}, "
        f"{export.reminders:,} reminder{'' if export.reminders == 1 else 's'}, "
        f"{export.accounts:,} connected account{'' if export.accounts == 1 else 's'} "
        f"(without their tokens) and your usage on {export.usage_days:,} "
        f"day{'' if export.usage_days == 1 else 's'}."
    )
    if export.truncated:
        limit = EXPORT_MAX_BYTES // (1024 * 1024)
        text += (
            f"\n\nYour history is larger than {limit} MB, so the file holds your newest "
            f"{export.messages_included:,} of {export.messages_total:,} messages. Ask whoever "
            "runs this assistant for the rest."
        )
    document = OutboundMedia(
        kind="document", data=export.data, file_name=export.file_name, mime_type=EXPORT_MIME_TYPE
    )
    return ExportReply(text=text, document=document)


def _export_address(identity_id: int) -> str:
    external_id = Identity.objects.values_list("external_id", flat=True).get(pk=identity_id)
    user_id = external_id.partition(":")[2]  # stored as "<token id>:<the client's user id>"
    path = reverse("api:user_export", kwargs={"user_id": user_id})
    return f"Your data is a JSON file: fetch it with this API token from `GET {public_url(path)}`."


def forget_propose(*, identity_id: int, chat_pk: int, message_pk: int) -> ForgetReply:
    """``/forget``: ask first; the answer is the person's /confirm or /cancel."""
    action_id = pending_action_propose(
        tool=FORGET_ACTION,
        arguments={},
        summary=FORGET_SUMMARY,
        identity_id=identity_id,
        chat_id=chat_pk,
        message_id=message_pk,
    )
    return ForgetReply(
        text=f"{FORGET_EXPLAINED}\n\n{confirm_prompt(FORGET_SUMMARY)}", action_id=action_id
    )
