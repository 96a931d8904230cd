"""Confirm/Cancel buttons under an answer that proposes a change (bot accounts only: users
cannot send inline keyboards, and their answer already says "Reply /confirm or /cancel").

An answer whose ``ProcessingResult.pending_action_id`` is set gets ``decision_markup`` under
its last message. A press carries ``pa:c:<id>`` (confirm) or ``pa:x:<id>`` (cancel), far
under Telegram's 64-byte limit for callback data. ``decision_press`` settles it with the
presser's identity through ``pipeline.tools.pending_action_decide``, which alone decides who
may and makes a second press run nothing; what comes back says how to show the outcome.

``decision_offer`` puts the buttons up, ``decision_handle`` answers a press; the bridge
calls them (``TelegramBridge._offer_decision`` and ``on_callback``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import connections
from pyrogram import types
from pyrogram.errors.rpc_error import RPCError

from aisystem.models import Identity, PendingAction, PendingActionStatus, Transport
from pipeline.response_manager import ResponseManager
from pipeline.tools import Decision, pending_action_decide
from pipeline.types import ProcessingResult
from telegram_bridge.transport import TelegramTransport

logger = logging.getLogger(__name__)

DECISION_PREFIX = "pa:"
CONFIRM_TEXT = "✅ Confirm"
CANCEL_TEXT = "✖ Cancel"
_CODES: dict[str, Decision] = {"c": "confirm", "x": "cancel"}
_LETTERS: dict[Decision, str] = {decision: code for code, decision in _CODES.items()}
# Identity ids start at 1: someone Telegram knows but we never met matches no request, so
# ``pending_action_decide`` refuses them in its own words.
NOBODY = 0
# The toast the person who was asked sees, by what the request became (the full text goes
# to the chat); Telegram shows at most 200 characters.
TOAST_LIMIT = 200
_TOASTS: dict[str, str] = {
    PendingActionStatus.DONE: "Done.",
    PendingActionStatus.FAILED: "That didn't work.",
    PendingActionStatus.CANCELLED: "Cancelled.",
    PendingActionStatus.EXPIRED: "That request expired.",
    PendingActionStatus.RUNNING: "Already under way.",
}


@dataclass(frozen=True)
class DecisionPress:
    """What a button's callback data asks for."""

    action_id: int
    decision: Decision


@dataclass(frozen=True)
class DecisionOutcome:
    """What one press did. ``text`` is ``pending_action_decide``'s reply. ``asked`` is True
    when the presser is the person the request waits for (the chat gets ``text``; anyone
    else only a toast, so a stranger's tap posts nothing). ``settled`` is True once the
    request no longer waits (its buttons come off)."""

    text: str
    toast: str
    asked: bool
    settled: bool


def decision_callback_data(action_id: int, decision: Decision) -> str:
    return f"{DECISION_PREFIX}{_LETTERS[decision]}:{action_id}"


def decision_callback_parse(data: str | bytes | None) -> DecisionPress | None:
    """The press a Confirm/Cancel button's callback data names, or None if it is not one."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    if not data or not data.startswith(DECISION_PREFIX):
        return None
    code, _, number = data.removeprefix(DECISION_PREFIX).partition(":")
    decision = _CODES.get(code)
    if decision is None or not number.isdigit() or len(number) > 19:
        return None
    return DecisionPress(action_id=int(number), decision=decision)


def decision_markup(action_id: int) -> types.InlineKeyboardMarkup:
    """[Confirm] [Cancel] for request ``action_id``, on one row."""
    return types.InlineKeyboardMarkup(
        [
            [
                types.InlineKeyboardButton(
                    CONFIRM_TEXT, callback_data=decision_callback_data(action_id, "confirm")
                ),
                types.InlineKeyboardButton(
                    CANCEL_TEXT, callback_data=decision_callback_data(action_id, "cancel")
                ),
            ]
        ]
    )


def decision_press(*, press: DecisionPress, telegram_user_id: str) -> DecisionOutcome:
    """Settle ``press`` for the Telegram user who tapped. Synchronous, and it may call the
    provider: run it with ``sync_to_async(..., thread_sensitive=False)``; it closes this
    thread's database connections when done, as that thread may never be used again."""
    try:
        return _press(press, telegram_user_id)
    finally:
        connections.close_all()


def _press(press: DecisionPress, telegram_user_id: str) -> DecisionOutcome:
    identity_id = (
        Identity.objects.filter(transport=Transport.TELEGRAM, external_id=telegram_user_id)
        .values_list("pk", flat=True)
        .first()
    ) or NOBODY
    text = pending_action_decide(
        action_id=press.action_id, identity_id=identity_id, decision=press.decision
    )
    row = PendingAction.objects.filter(pk=press.action_id).values_list("identity_id", "status")
    found = row.first()
    if found is None:  # no such request: nothing to wait for
        return DecisionOutcome(text=text, toast=text[:TOAST_LIMIT], asked=False, settled=True)
    owner, status = found
    asked = owner == identity_id
    settled = status != PendingActionStatus.PENDING
    toast = _TOASTS.get(status, text) if asked else text
    return DecisionOutcome(text=text, toast=toast[:TOAST_LIMIT], asked=asked, settled=settled)


async def decision_offer(
    transport: TelegramTransport, chat_id: str, result: ProcessingResult
) -> None:
    """Confirm/Cancel under the last message of an answer that proposes a change (nothing
    for any other result)."""
    if result.pending_action_id is None or not result.reply_message_ids:
        return
    markup = decision_markup(result.pending_action_id)
    await transport.edit_buttons(chat_id, result.reply_message_ids[-1], markup)


async def decision_handle(
    query: types.CallbackQuery,
    press: DecisionPress,
    transport: TelegramTransport,
    responses: ResponseManager,
) -> None:
    """Answer a Confirm/Cancel press: the presser gets a toast; once the request no longer
    waits its buttons come off; the person who was asked gets the result in the chat, as a
    reply to the question, formatted and split as any answer."""
    if query.from_user is None:
        await query.answer()
        return
    outcome = await sync_to_async(decision_press, thread_sensitive=False)(
        press=press, telegram_user_id=str(query.from_user.id)
    )
    try:
        await query.answer(outcome.toast)
    except RPCError as error:  # the query expired while the provider answered
        logger.info("answering a button press failed: %s", error.ID or error)
    message = query.message
    if message is None or message.chat is None:  # a button not under one of our messages
        return
    chat_id, message_id = str(message.chat.id), str(message.id)
    if outcome.settled:
        await transport.edit_buttons(chat_id, message_id, None)
    if outcome.asked:
        await responses.deliver(transport, chat_id, outcome.text, reply_to=message_id)
