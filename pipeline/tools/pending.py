"""Changes that wait for the person: proposing, confirming and cancelling a ``PendingAction``.

A write tool (``WriteTool``) never acts when Claude calls it. It stores what it would do
(``pending_action_propose``) and the answer ends with ``confirm_prompt``; the person then
sends /confirm or /cancel, or taps a transport's Confirm/Cancel button, which calls
``pending_action_decide``.

The rules, each enforced here and nowhere else:

* only the person who was asked decides (``identity`` must match, also for an id given
  explicitly): anyone else gets "That isn't yours to confirm";
* a request lives ``LIFETIME`` (10 minutes): after that it is expired, whoever asks;
* it runs at most once, even after two taps or from two processes: the confirmation claims
  the row with one conditional UPDATE pending → running (same person, not expired), and only
  the caller whose UPDATE changed the row runs the write; the others are told it is already
  under way or done. A process that dies mid-write leaves the row "running": never run
  twice is the promise, so nothing retries it;
* one request waits per person and chat: a new proposal cancels that person's older one
  there, so a bare /confirm always means the question they saw last.

These are synchronous (they run in a worker thread). Confirming calls the provider: from
async code, run it with ``sync_to_async(..., thread_sensitive=False)`` so a slow provider
does not hold up the thread every other database call of the process shares.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from django.db import transaction
from django.utils import timezone

from aisystem.errors import IntegrationError
from aisystem.events import PendingEvent, events_record
from aisystem.integrations.accounts import account_of_identity
from aisystem.integrations.tokens import NeedsReconnect
from aisystem.models import Event, PendingAction, PendingActionStatus
from pipeline.tools.catalog import write_tool
from pipeline.tools.internal import INTERNAL_ACTIONS

logger = logging.getLogger(__name__)

LIFETIME = timedelta(minutes=10)
EXPIRED = "That request expired; ask again."
NOTHING_TO_CONFIRM = "There's nothing waiting for your confirmation."
NOTHING_TO_CANCEL = "There's nothing to cancel."
SUMMARY_LIMIT = 500  # PendingAction.summary

Decision = Literal["confirm", "cancel"]
_PENDING = PendingActionStatus.PENDING


def confirm_prompt(summary: str) -> str:
    """The question that ends an answer proposing ``summary``; added by the pipeline, not
    left to Claude, so the person always reads exactly what would happen."""
    return f"{summary}? Reply /confirm or /cancel."


def pending_action_propose(
    *,
    tool: str,
    arguments: Mapping[str, object],
    summary: str,
    identity_id: int,
    chat_id: int,
    message_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Store a change for the person to confirm within ``LIFETIME``; returns its id. The
    person's older request still waiting in this chat is cancelled (superseded)."""
    now = now or timezone.now()
    with transaction.atomic():
        PendingAction.objects.filter(
            identity_id=identity_id, chat_id=chat_id, status=_PENDING
        ).update(
            status=PendingActionStatus.CANCELLED,
            decided_at=now,
            result="Replaced by a newer request.",
        )
        action = PendingAction.objects.create(
            tool=tool,
            arguments=dict(arguments),
            summary=summary[:SUMMARY_LIMIT],
            identity_id=identity_id,
            chat_id=chat_id,
            message_id=message_id,
            expires_at=now + LIFETIME,
            created_at=now,
        )
        _record(action, "action.proposed", f"{tool} proposed, waiting for confirmation")
    return action.pk


def pending_action_confirm(
    *,
    identity_id: int,
    chat_id: int | None = None,
    action_id: int | None = None,
    now: datetime | None = None,
) -> str:
    """Run the person's request (``action_id``, else their newest one waiting in
    ``chat_id``) if it is theirs, unexpired and not yet run; returns the reply: the result
    with a link to what was created, or why nothing was done."""
    now = now or timezone.now()
    found = _find(
        identity_id=identity_id, chat_id=chat_id, action_id=action_id, verb="confirm", now=now
    )
    if isinstance(found, str):
        return found
    refusal = _refusal(found, identity_id=identity_id, verb="confirm", now=now)
    if refusal is not None:
        return refusal
    claimed = PendingAction.objects.filter(
        pk=found.pk, identity_id=identity_id, status=_PENDING, expires_at__gt=now
    ).update(status=PendingActionStatus.RUNNING, decided_at=now)
    if not claimed:  # someone (another tap, another process) got there first
        found.refresh_from_db()
        return _refusal(found, identity_id=identity_id, verb="confirm", now=now) or EXPIRED
    return _execute(found)


def pending_action_cancel(
    *,
    identity_id: int,
    chat_id: int | None = None,
    action_id: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """Cancel the person's request (``action_id``, else their newest one waiting in
    ``chat_id``); returns the reply, or None when no id was given and nothing of theirs
    waits there (so /cancel can speak only of the answer it stopped)."""
    now = now or timezone.now()
    found = _find(
        identity_id=identity_id, chat_id=chat_id, action_id=action_id, verb="cancel", now=now
    )
    if isinstance(found, str):
        return found if action_id is not None else None
    refusal = _refusal(found, identity_id=identity_id, verb="cancel", now=now)
    if refusal is not None:
        return refusal if action_id is not None else None
    cancelled = PendingAction.objects.filter(
        pk=found.pk, identity_id=identity_id, status=_PENDING
    ).update(status=PendingActionStatus.CANCELLED, decided_at=now, result="Cancelled.")
    if not cancelled:
        found.refresh_from_db()
        return _refusal(found, identity_id=identity_id, verb="cancel", now=now) or EXPIRED
    _record(found, "action.cancelled", f"{found.tool} cancelled")
    return f"Cancelled: {found.summary}."


def pending_action_decide(*, action_id: int, identity_id: int, decision: Decision) -> str:
    """What a Confirm or Cancel button does; returns the reply to show. ``identity_id`` is
    whoever tapped (the transport's sender), which is what makes someone else's tap fail."""
    if decision == "confirm":
        return pending_action_confirm(identity_id=identity_id, action_id=action_id)
    reply = pending_action_cancel(identity_id=identity_id, action_id=action_id)
    return reply or NOTHING_TO_CANCEL


def _find(
    *, identity_id: int, chat_id: int | None, action_id: int | None, verb: str, now: datetime
) -> PendingAction | str:
    """The request meant, or the reply saying there is none."""
    if action_id is not None:
        action = PendingAction.objects.filter(pk=action_id).first()
        return action if action is not None else f"There's no request number {action_id}."
    if chat_id is None:
        return NOTHING_TO_CONFIRM if verb == "confirm" else NOTHING_TO_CANCEL
    waiting = PendingAction.objects.filter(chat_id=chat_id, status=_PENDING)
    mine = waiting.filter(identity_id=identity_id).order_by("-created_at", "-pk").first()
    if mine is not None:
        return mine
    if waiting.filter(expires_at__gt=now).exists():
        return f"That isn't yours to {verb}."
    return NOTHING_TO_CONFIRM if verb == "confirm" else NOTHING_TO_CANCEL


def _refusal(action: PendingAction, *, identity_id: int, verb: str, now: datetime) -> str | None:
    """Why ``identity_id`` may not decide ``action`` now, or None if they may. The one access
    decision of this module: one condition per line."""
    if action.identity_id != identity_id:
        return f"That isn't yours to {verb}."
    if action.status == _PENDING and action.expires_at <= now:
        _expire(action, now=now)
        return EXPIRED
    if action.status == PendingActionStatus.EXPIRED:
        return EXPIRED
    if action.status == PendingActionStatus.CANCELLED:
        return "That was cancelled; ask again if you still want it."
    if action.status == PendingActionStatus.RUNNING:
        return "I'm already doing that."
    if action.status == PendingActionStatus.DONE:
        return f"That's done already. {action.result}".strip()
    if action.status == PendingActionStatus.FAILED:
        return f"That was tried already and did not work. {action.result}".strip()
    return None


def _expire(action: PendingAction, *, now: datetime) -> None:
    PendingAction.objects.filter(pk=action.pk, status=_PENDING, expires_at__lte=now).update(
        status=PendingActionStatus.EXPIRED, decided_at=now
    )


def _execute(action: PendingAction) -> str:
    """Do the claimed (running) change with the person's account; record done or failed."""
    internal = INTERNAL_ACTIONS.get(action.tool)
    if internal is not None:  # one the assistant makes itself (/forget)
        try:
            done = internal(action)
        except Exception:
            logger.exception("pending action %s (%s) failed", action.pk, action.tool)
            return _finish(
                action, failed=True, text="That didn't work: something went wrong on my side."
            )
        return _finish(action, failed=False, text=done)
    found = write_tool(action.tool)
    if found is None:
        return _finish(action, failed=True, text="That didn't work: I no longer know that tool.")
    provider, tool = found
    account = account_of_identity(action.identity_id, provider.provider)
    again = f"Send /connect {provider.provider}, then ask again."
    if account is None:
        text = f"That didn't work: your {provider.label} account isn't connected. {again}"
        return _finish(action, failed=True, text=text)
    try:
        text = tool.execute(account.pk, action.arguments)
    except NeedsReconnect:
        text = f"That didn't work: your {provider.label} account needs reconnecting. {again}"
        return _finish(action, failed=True, text=text)
    except IntegrationError as error:
        text = f"That didn't work: {provider.label} said: {error.details}"
        return _finish(action, failed=True, text=text)
    except Exception:
        logger.exception("pending action %s (%s) failed", action.pk, action.tool)
        return _finish(
            action, failed=True, text="That didn't work: something went wrong on my side."
        )
    return _finish(action, failed=False, text=text)


def _finish(action: PendingAction, *, failed: bool, text: str) -> str:
    status = PendingActionStatus.FAILED if failed else PendingActionStatus.DONE
    with transaction.atomic():
        PendingAction.objects.filter(pk=action.pk, status=PendingActionStatus.RUNNING).update(
            status=status, result=text
        )
        _record(
            action,
            f"action.{status}",
            f"{action.tool} {'failed' if failed else 'done'}",
            level=Event.Level.WARNING if failed else Event.Level.INFO,
        )
    return text


def _record(
    action: PendingAction, kind: str, summary: str, *, level: str = Event.Level.INFO
) -> None:
    """An event for the live feed: the tool and the id, never the arguments (they may be a
    private issue's text)."""
    events_record(
        [
            PendingEvent(
                kind=kind,
                summary=summary,
                level=level,
                data={"action_id": action.pk, "tool": action.tool},
            )
        ],
        chat_id=action.chat_id,
        message_id=action.message_id,
    )
