"""The assistant's commands, executed: sync functions over the database that return the
Markdown reply. ``/cancel`` needs the processor's in-flight tasks, so it only asks for it
(and cancels the sender's change waiting for confirmation here, if there is one).

Integrations: ``/connect [provider]`` lists what staff configured, or sends a one-time link,
but only in a private chat (private, browser, REST): a link posted in a group could be used
by anyone there. ``/connections`` lists the sender's accounts; ``/disconnect provider``
revokes one at the provider and removes it. ``/confirm [number]`` runs the sender's change
waiting for confirmation (``pipeline.tools.pending``).

Reminders: ``/remind``, ``/reminders`` and ``/timezone`` are ``pipeline.reminders.commands``,
run here with the real clock.

The person's data: ``/usage``, ``/export`` (its outcome carries the JSON file as ``document``
for the processor to send) and ``/forget`` (its outcome carries the confirmation's
``pending_action_id``, for the transport's Confirm/Cancel buttons) are
``pipeline.data_commands``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.utils import timezone

from aisystem.integrations.accounts import (
    account_disconnect,
    account_of_identity,
    accounts_of_identity,
)
from aisystem.integrations.base import Provider
from aisystem.integrations.links import connect_link_create
from aisystem.integrations.registry import PROVIDERS, provider_get, providers_configured
from aisystem.models import (
    Chat,
    Conversation,
    Identity,
    IntegrationAccount,
    IntegrationStatus,
    Workspace,
)
from aisystem.services.conversations import conversations_end
from pipeline.background import background_cancel
from pipeline.claude.client import claude_status
from pipeline.commands import COMMANDS, help_text
from pipeline.data_commands import PRIVATE_CHAT_TYPES, export_reply, forget_propose, usage_reply
from pipeline.reminders.commands import remind_command, reminders_command, timezone_command
from pipeline.tools.pending import pending_action_cancel, pending_action_confirm
from pipeline.types import MessageContext, OutboundMedia

WELCOME = "Hello! I'm your assistant. Write to me in plain words, or send a photo or a PDF."
PRIVATE_LINK_ONLY = "Ask me in a private chat: the link is personal."
# Commands that call a provider, or read a person's whole history (/export): the processor
# runs them outside the shared ORM thread.
PROVIDER_COMMANDS = frozenset({"confirm", "disconnect", "export"})


@dataclass(frozen=True)
class CommandOutcome:
    """The reply (Markdown); ``document`` is a file to send after it; ``pending_action_id``
    is the change the reply asks the person to confirm (for Confirm/Cancel buttons)."""

    reply: str
    cancel_requested: bool = False
    new_conversation: bool = False
    document: OutboundMedia | None = None
    pending_action_id: int | None = None


def command_execute(*, name: str, args: str, context: MessageContext) -> CommandOutcome:
    """Run one command for the sender in ``context``; unknown names get a pointer to /help."""
    if name == "cancel":
        return _cancel(args, context)
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
        "connect": _connect,
        "connections": _connections,
        "disconnect": _disconnect,
        "confirm": _confirm,
        "remind": _remind,
        "reminders": _reminders,
        "timezone": _timezone,
        "bg": _bg,
        "export": _export,
        "forget": _forget,
    }
    return handlers[name](args, context)


def command_execute_closing_connections(
    *, name: str, args: str, context: MessageContext
) -> CommandOutcome:
    """``command_execute`` for a thread of its own: closes that thread's database
    connections afterwards, as the thread may never be used again."""
    try:
        return command_execute(name=name, args=args, context=context)
    finally:
        connections.close_all()


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
    return CommandOutcome(reply=usage_reply(identity_id=context.identity_id, now=timezone.now()))


def _export(args: str, context: MessageContext) -> CommandOutcome:
    exported = export_reply(
        identity_id=context.identity_id, chat_type=context.chat_type, now=timezone.now()
    )
    return CommandOutcome(reply=exported.text, document=exported.document)


def _forget(args: str, context: MessageContext) -> CommandOutcome:
    proposed = forget_propose(
        identity_id=context.identity_id, chat_pk=context.chat_pk, message_pk=context.message_pk
    )
    return CommandOutcome(reply=proposed.text, pending_action_id=proposed.action_id)


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


def _action_number(args: str) -> int | str | None:
    """The request number after /confirm or /cancel: None if none was given, the reply
    text if what was given is not a number."""
    if not args:
        return None
    word = args.split()[0].lstrip("#")
    if not word.isdigit():
        return "Add the request's number, or nothing for the newest one."
    return int(word)


def _confirm(args: str, context: MessageContext) -> CommandOutcome:
    number = _action_number(args)
    if isinstance(number, str):
        return CommandOutcome(reply=number)
    reply = pending_action_confirm(
        identity_id=context.identity_id, chat_id=context.chat_pk, action_id=number
    )
    return CommandOutcome(reply=reply)


def _cancel(args: str, context: MessageContext) -> CommandOutcome:
    """Stop the answer in flight (the processor does it) and cancel the sender's waiting
    change in this chat; the reply names the change, "" when there was none."""
    number = _action_number(args)
    if isinstance(number, str):
        return CommandOutcome(reply=number, cancel_requested=True)
    reply = pending_action_cancel(
        identity_id=context.identity_id, chat_id=context.chat_pk, action_id=number
    )
    if number is None:  # a bare /cancel also stops the sender's background answers here
        cancelled = background_cancel(chat_pk=context.chat_pk, identity_id=context.identity_id)
        said = [reply or ""] + [f"Cancelled the background task “{text}”." for text in cancelled]
        reply = "\n\n".join(part for part in said if part)
    return CommandOutcome(reply=reply or "", cancel_requested=True)


def _bg(args: str, context: MessageContext) -> CommandOutcome:
    """``/bg`` alone (``/bg <task>`` goes to the agent, in the background)."""
    return CommandOutcome(
        reply="Tell me what to work on, e.g. `/bg summarise the open issues in acme/web`. "
        "I'll say I'm on it, and send the answer here when it's ready."
    )


def _remind(args: str, context: MessageContext) -> CommandOutcome:
    reply = remind_command(
        args=args, identity_id=context.identity_id, chat_pk=context.chat_pk, now=timezone.now()
    )
    return CommandOutcome(reply=reply)


def _reminders(args: str, context: MessageContext) -> CommandOutcome:
    return CommandOutcome(reply=reminders_command(args=args, identity_id=context.identity_id))


def _timezone(args: str, context: MessageContext) -> CommandOutcome:
    reply = timezone_command(args=args, identity_id=context.identity_id, now=timezone.now())
    return CommandOutcome(reply=reply)


def _connect(args: str, context: MessageContext) -> CommandOutcome:
    configured = providers_configured()
    if not configured:
        return CommandOutcome(reply="No integrations are set up here yet.")
    if not args:
        return CommandOutcome(reply=_connect_listing(configured, context.identity_id))
    name = args.split()[0].lower()
    provider = provider_get(name)
    if provider is None:
        names = ", ".join(f"`{p.name}`" for p in configured)
        unknown = name.replace("`", "")[:40]
        return CommandOutcome(reply=f"I can't connect `{unknown}`. You can connect: {names}.")
    if context.chat_type not in PRIVATE_CHAT_TYPES:
        return CommandOutcome(reply=PRIVATE_LINK_ONLY)
    link = connect_link_create(
        identity_id=context.identity_id, chat_id=context.chat_pk, provider=provider.name
    )
    account = account_of_identity(context.identity_id, provider.name)
    again = (
        f"You're connected as {account.login or account.uid}; connecting again replaces it.\n\n"
        if account is not None
        else ""
    )
    return CommandOutcome(
        reply=(
            f"{again}Open this link to connect {provider.label}. It is for you only, works "
            f"once and expires in 10 minutes:\n{link}"
        )
    )


def _connect_listing(configured: list[Provider], identity_id: int) -> str:
    accounts = {account.provider: account for account in accounts_of_identity(identity_id)}
    lines = ["Integrations:"]
    for provider in configured:
        account = accounts.get(provider.name)
        if account is None:
            state = f"not connected: /connect {provider.name}"
        elif account.status == IntegrationStatus.NEEDS_RECONNECT:
            state = f"needs reconnecting: /connect {provider.name}"
        else:
            state = f"connected as {account.login or account.uid}"
        lines.append(f"- {provider.label}: {state}")
    return "\n".join(lines)


def _connections(args: str, context: MessageContext) -> CommandOutcome:
    accounts = accounts_of_identity(context.identity_id)
    if not accounts:
        hint = " Send /connect to see what you can connect." if providers_configured() else ""
        return CommandOutcome(reply=f"You have no connected accounts.{hint}")
    lines = ["Your connected accounts:"] + [_account_line(account) for account in accounts]
    return CommandOutcome(reply="\n".join(lines))


def _account_line(account: IntegrationAccount) -> str:
    status = IntegrationStatus(account.status).label.lower()
    scopes = ", ".join(account.scopes.replace(",", " ").split()) or "none recorded"
    return (
        f"- {_label(account.provider)}: {account.login or account.uid}, {status}, "
        f"scopes: {scopes}, connected {account.created:%Y-%m-%d}"
    )


def _disconnect(args: str, context: MessageContext) -> CommandOutcome:
    if not args:
        return CommandOutcome(reply="Say which one, e.g. `/disconnect github`.")
    name = args.split()[0].lower()
    label = _label(name)
    account = account_of_identity(context.identity_id, name)
    if account is None:
        return CommandOutcome(reply=f"You have no {label} account connected.")
    who = account.login or account.uid
    outcome = account_disconnect(account_id=account.pk)
    if outcome.revoked:
        return CommandOutcome(
            reply=f"Disconnected {label} ({who}): access revoked at {label} and removed here."
        )
    return CommandOutcome(
        reply=(
            f"Removed your {label} account ({who}) here, but {label} could not confirm that "
            f"the access is revoked ({outcome.detail}). You can revoke it in your {label} "
            "settings too."
        )
    )


def _label(provider: str) -> str:
    known = PROVIDERS.get(provider)
    return known.label if known is not None else provider.replace("`", "")[:40]
