"""Telegram sign-in sessions: storing a signed-in account and building its client."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from pyrogram import Client

from aisystem.models import TelegramPeer, TelegramSession
from telegram_bridge.client_state import DatabaseStorage
from telegram_bridge.config import BridgeConfig


@dataclass(frozen=True)
class SignedInAccount:
    user_id: int
    username: str
    is_bot: bool


@transaction.atomic
def telegram_session_save(
    *,
    name: str,
    api_id: int,
    api_hash: str,
    session_string: str,
    account: SignedInAccount,
) -> TelegramSession:
    """Store a fresh sign-in (encrypted). Peers and the update state of an earlier sign-in
    under this name are forgotten: they belong to the old authorization."""
    session, _ = TelegramSession.objects.update_or_create(
        name=name,
        defaults={
            "mode": TelegramSession.Mode.BOT if account.is_bot else TelegramSession.Mode.USER,
            "api_id": api_id,
            "api_hash": api_hash,
            "session_string": session_string,
            "account_user_id": account.user_id,
            "account_username": account.username,
            "is_enabled": True,
            "state": TelegramSession.State.STOPPED,
            "update_state": [],
        },
    )
    TelegramPeer.objects.filter(session=session).delete()
    return session


def client_for_session(session: TelegramSession, config: BridgeConfig) -> Client:
    """A client for a stored session: peers and update state in the database, and missed
    updates fetched at start (``skip_updates=False``: that is the catch-up)."""
    storage = DatabaseStorage(session_pk=session.pk, session_string=session.session_string)
    return Client(
        name=f"aisystem-{session.name}",
        api_id=session.api_id,
        api_hash=session.api_hash,
        storage_engine=storage,
        skip_updates=False,
        # Handlers only enqueue to the dispatcher; the concurrency lives there.
        workers=2,
        # FloodWaits reach the transport, which sleeps or reschedules (see transport).
        sleep_threshold=0,
    )
