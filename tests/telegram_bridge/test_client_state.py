"""The bridge's Pyrogram storage keeps peers and the update state across restarts."""

from __future__ import annotations

import base64
import struct

import pytest
from asgiref.sync import sync_to_async
from pyrogram import raw
from pyrogram.storage.storage import UpdateState

from aisystem.models import TelegramPeer, TelegramSession
from telegram_bridge.client_state import DatabaseStorage

pytestmark = pytest.mark.django_db(transaction=True)


def session_string(*, user_id: int = 4242, is_bot: bool = True) -> str:
    packed = struct.pack(">BI?256sQ?", 2, 12345, False, b"k" * 256, user_id, is_bot)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


async def make_session() -> TelegramSession:
    return await TelegramSession.objects.acreate(
        name="bot", mode=TelegramSession.Mode.BOT, session_string=session_string()
    )


async def test_peers_and_update_state_survive_a_restart() -> None:
    session = await make_session()
    first = DatabaseStorage(session_pk=session.pk, session_string=session.session_string)
    await first.open()
    await first.update_peers([(777, 555, "user", None), (-100123, 999, "channel", None)])
    await first.update_usernames([(777, ["ada"])])
    await first.set_update_state(UpdateState(0, pts=41, qts=3, date=1700000000, seq=9))
    await first.close()

    second = DatabaseStorage(session_pk=session.pk, session_string=session.session_string)
    await second.open()

    user = await second.get_peer_by_id(777)
    assert isinstance(user, raw.types.InputPeerUser) and user.access_hash == 555
    assert (await second.get_peer_by_username("ada")).user_id == 777
    assert [(s.pts, s.qts, s.seq) for s in await second.get_update_states()] == [(41, 3, 9)]
    assert await second.user_id() == 4242
    await second.close()


async def test_save_writes_only_what_changed_and_updates_existing_peers() -> None:
    session = await make_session()
    storage = DatabaseStorage(session_pk=session.pk, session_string=session.session_string)
    await storage.open()
    await storage.update_peers([(1, 10, "user", None)])
    await storage.save()
    await storage.update_peers([(1, 11, "user", "+15550000")])
    await storage.save()

    peer = await TelegramPeer.objects.aget(session=session, peer_id=1)
    assert (peer.access_hash, peer.phone_number) == (11, "+15550000")
    assert await sync_to_async(TelegramPeer.objects.count)() == 1
    await storage.close()


async def test_the_auth_key_is_never_written_outside_the_encrypted_session() -> None:
    session = await make_session()
    storage = DatabaseStorage(session_pk=session.pk, session_string=session.session_string)
    await storage.open()
    await storage.update_peers([(5, 50, "bot", None)])
    await storage.close()

    stored = await TelegramSession.objects.values("update_state").aget(pk=session.pk)
    assert "k" * 32 not in str(stored)
    assert storage.database == ":memory:"
