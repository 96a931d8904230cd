"""Changes the assistant makes itself once the person confirmed them, with no provider account
involved: ``PendingAction.tool`` → what runs it, returning what the person is told.

``pending`` runs them as it runs a provider's write: the confirmation claims the request
once, and the result is recorded done (or failed, should the runner raise). The one today is
``/forget`` (``aisystem.services.forget``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from aisystem.integrations.accounts import account_disconnect, accounts_of_identity
from aisystem.integrations.registry import PROVIDERS
from aisystem.models import PendingAction
from aisystem.services.forget import FORGET_ACTION, Forgotten, identity_forget


def forget_run(action: PendingAction) -> str:
    """Forget the person who confirmed ``action``: their accounts revoked at each provider
    and removed, then everything else (``identity_forget``); the request that asked stays.
    Calls the providers: it runs where ``pending`` runs a write, outside the shared thread."""
    accounts = accounts_of_identity(action.identity_id)
    not_revoked = []
    for account in accounts:
        if not account_disconnect(account_id=account.pk).revoked:
            known = PROVIDERS.get(account.provider)
            not_revoked.append(known.label if known else account.provider)
    forgotten = identity_forget(
        identity_id=action.identity_id,
        keep_message_id=action.message_id,
        keep_action_id=action.pk,
        accounts=len(accounts),
        not_revoked=not_revoked,
    )
    return forget_reply(forgotten)


def forget_reply(forgotten: Forgotten) -> str:
    """What the person reads once they are forgotten."""
    deleted = [
        _count(forgotten.messages, "message"),
        _count(forgotten.conversations, "conversation"),
        _count(forgotten.reminders, "reminder"),
    ]
    lines = [f"Done: I deleted {', '.join(deleted[:-1])} and {deleted[-1]}."]
    if forgotten.accounts:
        lines.append(f"I disconnected {_count(forgotten.accounts, 'connected account')}.")
    for label in forgotten.not_revoked:
        lines.append(
            f"{label} could not confirm that my access is revoked: you can revoke it in your "
            f"{label} settings too."
        )
    lines.append(
        "Today's usage counters stay until midnight, so daily limits still hold. "
        "Write to me whenever you like: it's a fresh start."
    )
    return "\n\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


INTERNAL_ACTIONS: Mapping[str, Callable[[PendingAction], str]] = MappingProxyType(
    {FORGET_ACTION: forget_run}
)
