"""Storing a Telegram sign-in, and the command's refusals that need no network."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from aisystem.models import TelegramPeer, TelegramSession
from telegram_bridge.client_state import DatabaseStorage
from telegram_bridge.config import BridgeConfig
from telegram_bridge.sessions import SignedInAccount, client_for_session, telegram_session_save

pytestmark = pytest.mark.django_db


def test_a_sign_in_is_stored_encrypted_and_replaces_the_old_one() -> None:
    old = telegram_session_save(
        name="default",
        api_id=1,
        api_hash="old-hash-SECRET",
        session_string="old-session-SECRET",
        account=SignedInAccount(user_id=1, username="oldbot", is_bot=True),
    )
    TelegramPeer.objects.create(session=old, peer_id=5, access_hash=6, peer_type="user")

    new = telegram_session_save(
        name="default",
        api_id=2,
        api_hash="new-hash-SECRET",
        session_string="new-session-SECRET",
        account=SignedInAccount(user_id=9, username="ada", is_bot=False),
    )

    assert new.pk == old.pk
    assert (new.mode, new.account_username) == (TelegramSession.Mode.USER, "ada")
    assert not TelegramPeer.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_string, api_hash FROM aisystem_telegramsession")
        stored = cursor.fetchone()
    assert "new-session-SECRET" not in stored[0] and "new-hash-SECRET" not in stored[1]


def test_the_client_uses_the_database_storage_and_fetches_missed_updates() -> None:
    session = telegram_session_save(
        name="bot",
        api_id=12345,
        api_hash="hash",
        session_string="unused-until-open",
        account=SignedInAccount(user_id=1, username="b", is_bot=True),
    )

    client = client_for_session(session, BridgeConfig(flood_wait_max_seconds=7))

    assert isinstance(client.storage, DatabaseStorage)
    assert client.skip_updates is False
    assert client.sleep_threshold == 0  # the transport handles flood waits


def test_login_refuses_a_non_numeric_api_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "not-a-number")

    with pytest.raises(CommandError, match="API id is a number"):
        call_command("telegram_login")
