"""Which tools one message's sender gets: ``tools_for(context)``, built per message.

The registry holds the built-in tools and ``schedule_reminder`` (bound to the sender and
their chat) plus, for each provider staff configured
(``providers_configured``) that has tools (``catalog.PROVIDER_TOOLS``), that provider's tools
bound to the *sender's* account, only when its status is ``connected``. An account that
needs reconnecting brings no tools (every call would fail); the guidance tells Claude to
point the person to ``/connect``. Nothing else decides whose token a tool uses: a tool is a
closure over one account id and one chat, so two people never see each other's tools or
data.

Reads run in a worker thread (the API clients are synchronous ``requests``) and turn a
provider's failure into an ``is_error`` result Claude can explain. Writes never act: they
check the input and store a ``PendingAction`` (see ``pending``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

from aisystem.errors import IntegrationError
from aisystem.integrations.accounts import accounts_of_identity
from aisystem.integrations.registry import providers_configured
from aisystem.integrations.tokens import NeedsReconnect
from aisystem.models import IntegrationAccount, IntegrationStatus
from pipeline.tools.actions import ProviderTools, ReadTool, WriteTool
from pipeline.tools.builtin import BUILTIN_TOOLS
from pipeline.tools.catalog import PROVIDER_TOOLS
from pipeline.tools.pending import confirm_prompt, pending_action_propose
from pipeline.tools.registry import Tool, ToolFailed, ToolOutput, ToolRegistry
from pipeline.tools.reminders import reminder_tool
from pipeline.types import MessageContext

T = TypeVar("T")

AWAITING = (
    "Not done yet: this waits for the person's confirmation ({summary}). Tell them in a "
    "sentence what you proposed. The question asking them to /confirm or /cancel is added to "
    "your answer for you, so do not repeat it, and call no more tools in this answer."
)

_propose = sync_to_async(pending_action_propose)


def tools_for(context: MessageContext) -> ToolRegistry:
    """The tools of the sender of ``context`` (synchronous: it reads their accounts)."""
    configured = [p for p in providers_configured() if p.name in PROVIDER_TOOLS]
    if not configured:
        return ToolRegistry(_everyones(context))
    accounts = {account.provider: account for account in accounts_of_identity(context.identity_id)}
    tools = _everyones(context)
    connected: list[tuple[ProviderTools, IntegrationAccount]] = []
    unconnected: list[ProviderTools] = []
    for provider in configured:
        catalog = PROVIDER_TOOLS[provider.name]
        account = accounts.get(provider.name)
        if account is not None and account.status == IntegrationStatus.CONNECTED:
            tools += _bind(catalog, account.pk, context)
            connected.append((catalog, account))
        else:
            unconnected.append(catalog)
    return ToolRegistry(tools, guidance=_guidance(connected, unconnected, accounts))


async def tools_for_message(context: MessageContext) -> ToolRegistry:
    """``tools_for`` from async code: no thread hop (and no query) when no provider with
    tools is configured, which is every message of an installation without integrations."""
    if not any(provider.name in PROVIDER_TOOLS for provider in providers_configured()):
        return ToolRegistry(_everyones(context))
    return await _tools_for(context)


_tools_for = sync_to_async(tools_for)


def _everyones(context: MessageContext) -> list[Tool]:
    """The tools every sender has: the built-ins, and ``schedule_reminder`` bound to them and
    their chat (it needs no account, but must know whose reminder it schedules)."""
    return [*BUILTIN_TOOLS, reminder_tool(context)]


def reconnect_note(provider: ProviderTools) -> str:
    return (
        f"The person's {provider.label} account needs to be connected again. Tell them to "
        f"send /connect {provider.provider}."
    )


def _bind(provider: ProviderTools, account_id: int, context: MessageContext) -> list[Tool]:
    reads = [_bound_read(tool, provider, account_id) for tool in provider.reads]
    return reads + [_bound_write(tool, context) for tool in provider.writes]


def _bound_read(tool: ReadTool, provider: ProviderTools, account_id: int) -> Tool:
    async def run(arguments: Mapping[str, object]) -> str:
        try:
            return await _off_loop(partial(tool.run, account_id, arguments))
        except NeedsReconnect:
            raise ToolFailed(reconnect_note(provider)) from None
        except IntegrationError as error:
            raise ToolFailed(f"{provider.label} failed: {error.details}") from None

    return Tool(tool.spec, run)


def _bound_write(tool: WriteTool, context: MessageContext) -> Tool:
    async def run(arguments: Mapping[str, object]) -> ToolOutput:
        proposal = tool.prepare(arguments)  # ToolInputError goes back to Claude
        action_id = await _propose(
            tool=tool.spec.name,
            arguments=proposal.arguments,
            summary=proposal.summary,
            identity_id=context.identity_id,
            chat_id=context.chat_pk,
            message_id=context.message_pk,
        )
        return ToolOutput(
            text=AWAITING.format(summary=proposal.summary),
            pending_action_id=action_id,
            confirm_prompt=confirm_prompt(proposal.summary),
        )

    return Tool(tool.spec, run)


async def _off_loop(work: Callable[[], T]) -> T:
    """Run ``work`` in a worker thread, closing that thread's database connections after
    it: the pool's threads outlive the call, and an idle connection per thread would pile
    up on PostgreSQL."""

    def closing() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    return await asyncio.to_thread(closing)


def _guidance(
    connected: list[tuple[ProviderTools, IntegrationAccount]],
    unconnected: list[ProviderTools],
    accounts: Mapping[str, IntegrationAccount],
) -> str:
    """The system prompt's paragraph on integrations: what is connected, what waits for a
    confirmation, and where to send the person for the rest."""
    lines = []
    if connected:
        uses = "; ".join(
            f"{catalog.label} as {account.login or 'them'}: {catalog.guidance}"
            for catalog, account in connected
        )
        lines.append(f"The person has connected their own accounts ({uses}).")
        lines.append(
            "Tools that change something (create, comment, add) do not act when you call "
            "them: the person is asked to confirm first. Propose one change per answer. "
            "Only /confirm (or a Confirm button) confirms: if they say yes in words, ask them "
            "to send /confirm instead of proposing the change again."
        )
    for catalog in unconnected:
        if catalog.provider in accounts:
            lines.append(
                f"Their {catalog.label} account needs reconnecting: if they ask for it, "
                f"tell them to send /connect {catalog.provider}."
            )
        else:
            lines.append(
                f"{catalog.label} is not connected for this person: if they ask for "
                f"something that needs it, tell them to send /connect {catalog.provider} "
                "(in a private chat)."
            )
    return " ".join(lines)
