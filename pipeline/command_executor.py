"""The assistant's commands, executed: sync functions over the database that return the
Markdown reply. ``/cancel`` needs the processor's in-flight tasks, so it only asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from aisystem.models import Chat, Conversation, Identity, RateLimitPolicy, Workspace
from aisystem.selectors import identity_usage_today
from aisystem.services.conversations import conversations_end
from pipeline.claude.client import claude_status
from pipeline.commands import COMMANDS, help_text
from pipeline.types import MessageContext

WELCOME = "Hello! I'm your assistant. Write to me in plain words, or send a photo or a PDF."


@dataclass(frozen=True)
class CommandOutcome:
    reply: str
    cancel_requested: bool = False
    new_conversation: bool = False


def command_execute(*, name: str, args: str, context: MessageContext) -> CommandOutcome:
    """Run one command for the sender in ``context``; unknown names get a pointer to /help."""
    if name == "cancel":
        return CommandOutcome(reply="", cancel_requested=True)
    if name not in COMMANDS:
        return CommandOutcome(reply=f"I don't know the command /{name}. Send /help for the list.")
    handlers = {
        "start": _start,
        "help": _help,
        "new": _new,
        "workspace": _workspace,
        "usage": _usage,
        "status": _status,
        "whoami": _whoami,
    }
    return handlers[name](args, context)


def _active_workspace_slugs() -> list[str]:
    return list(Workspace.objects.filter(is_active=True).values_list("slug", flat=True))


def _start(args: str, context: MessageContext) -> CommandOutcome:
    return CommandOutcome(reply=f"{WELCOME}\n\n{help_text(_active_workspace_slugs())}")


def _help(args: str, context: MessageContext) -> CommandOutcome:
    return CommandOutcome(reply=help_text(_active_workspace_slugs()))


def _new(args: str, context: MessageContext) -> CommandOutcome:
    conversations_end(
        conversations=Conversation.objects.filter(pk=context.conversation_id), reason="/new"
    )
    return CommandOutcome(
        reply="Started a new conversation. I've forgotten what we said before.",
        new_conversation=True,
    )


def _workspace(args: str, context: MessageContext) -> CommandOutcome:
    chat = Chat.objects.select_related("workspace").get(pk=context.chat_pk)
    workspaces = list(Workspace.objects.filter(is_active=True).order_by("slug"))
    if not args:
        lines = [
            f"- `{w.slug}`: {w.name}{' (current)' if w.pk == context.workspace.id else ''}"
            + (f": {w.description}" if w.description else "")
            for w in workspaces
        ]
        listing = "\n".join(lines) or "- none"
        return CommandOutcome(reply=f"Workspaces:\n{listing}\n\nSwitch with `/workspace name`.")
    slug = args.split()[0].lower()
    chosen = next((w for w in workspaces if w.slug == slug), None)
    if chosen is None:
        return CommandOutcome(
            reply=f"There is no workspace `{slug}`. Send /workspace for the list."
        )
    if chat.workspace is not None and chat.workspace.is_active and chat.workspace.pk != chosen.pk:
        return CommandOutcome(
            reply=f"This chat is tied to the workspace `{chat.workspace.slug}` by the admins."
        )
    Chat.objects.filter(pk=chat.pk).update(selected_workspace=chosen)
    return CommandOutcome(reply=f"Switched to the workspace **{chosen.name}** (`{chosen.slug}`).")


def _usage(args: str, context: MessageContext) -> CommandOutcome:
    usage = identity_usage_today(identity_id=context.identity_id)
    identity = Identity.objects.get(pk=context.identity_id)
    policies = list(
        RateLimitPolicy.objects.filter(enabled=True).filter(
            Q(identity=identity) | Q(role=identity.role)
        )
    )
    policy = next((p for p in policies if p.identity_id), None) or next(iter(policies), None)
    lines = [f"Today you have used {usage.tokens:,} tokens (about ${usage.cost_usd:.4f})."]
    if policy is not None and policy.daily_token_budget is not None:
        lines.append(f"Daily token budget: {policy.daily_token_budget:,}.")
    if policy is not None and policy.daily_cost_budget is not None:
        lines.append(f"Daily cost budget: ${policy.daily_cost_budget:.2f}.")
    if policy is not None and policy.messages_per_window is not None:
        lines.append(
            f"Rate limit: {policy.messages_per_window} messages per {policy.window_seconds} s."
        )
    return CommandOutcome(reply="\n".join(lines))


def _status(args: str, context: MessageContext) -> CommandOutcome:
    status = claude_status()
    available = status.breaker_state == "closed" and (
        status.usable_credentials > 0 or status.fallback_key_configured
    )
    state = "working normally" if available else "temporarily unavailable"
    return CommandOutcome(
        reply=(
            f"The assistant is {state}.\n"
            f"Workspace: **{context.workspace.name}** (`{context.workspace.slug}`), "
            f"model `{context.workspace.model}`.\n"
            f"This conversation has {len(context.history)} earlier messages in view."
        )
    )


def _whoami(args: str, context: MessageContext) -> CommandOutcome:
    identity = Identity.objects.get(pk=context.identity_id)
    name = f"@{identity.username}" if identity.username else identity.display_name or "-"
    return CommandOutcome(
        reply=(
            f"You are {name} on {identity.get_transport_display()} "
            f"(id `{identity.external_id}`), role: {identity.get_role_display().lower()}."
        )
    )
