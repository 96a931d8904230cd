"""Pyrogram storage for the bridge: the session from the encrypted ``TelegramSession`` row,
peers and the update state kept in the project's database.

Pyrogram offers two storages: a session file (which would hold the account's auth key
unencrypted on disk) and an in-memory one (which forgets every peer and the update state at
each restart, so chats whose access hash is gone cannot be addressed and updates that arrived
while the bridge was down are skipped). This one is the in-memory engine, seeded at ``open``
from ``TelegramPeer`` rows and ``TelegramSession.update_state``, and written back on
``save`` (the bridge calls it on every heartbeat and when it stops) and ``close``. Writes in
between stay in memory: a crash loses at most one heartbeat's worth of new peers, which the
next update about them brings back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone
from pyrogram.storage import SQLiteStorage
from pyrogram.storage.storage import UpdateState

from aisystem.models import TelegramPeer, TelegramSession

PeerRow = tuple[int, int, str, str | None]


class DatabaseStorage(SQLiteStorage):
    def __init__(self, *, session_pk: int, session_string: str) -> None:
        super().__init__(
            f"aisystem-{session_pk}",
            workdir=Path("."),
            session_string=session_string,
            in_memory=True,
        )
        self.session_pk = session_pk
        self._dirty_peers: dict[int, PeerRow] = {}
        self._dirty_usernames: dict[int, list[str]] = {}

    async def open(self) -> None:
        await super().open()  # type: ignore[no-untyped-call]
        peers, states = await sync_to_async(_load)(self.session_pk)
        rows = [(p.peer_id, p.access_hash or 0, p.peer_type, p.phone_number or None) for p in peers]
        await super().update_peers(rows)
        await super().update_usernames((p.peer_id, list(p.usernames)) for p in peers)
        if states:
            await super().set_update_state([UpdateState(*state) for state in states])

    async def update_peers(self, peers: Iterable[PeerRow]) -> None:
        peers = list(peers)
        await super().update_peers(peers)
        for row in peers:
            self._dirty_peers[row[0]] = row

    async def update_usernames(self, usernames: Iterable[tuple[int, list[str | None]]]) -> None:
        usernames = list(usernames)
        await super().update_usernames(usernames)
        for peer_id, names in usernames:
            self._dirty_usernames[peer_id] = [name for name in names if name]

    async def save(self) -> None:
        await super().save()  # type: ignore[no-untyped-call]
        peers, self._dirty_peers = self._dirty_peers, {}
        usernames, self._dirty_usernames = self._dirty_usernames, {}
        states = [
            [state.id, state.pts, state.qts, state.date, state.seq]
            for state in await self.get_update_states()
        ]
        await sync_to_async(_store)(self.session_pk, peers, usernames, states)

    async def close(self) -> None:
        await self.save()
        await super().close()  # type: ignore[no-untyped-call]


def _load(session_pk: int) -> tuple[list[TelegramPeer], list[list[Any]]]:
    peers = list(TelegramPeer.objects.filter(session_id=session_pk))
    state = TelegramSession.objects.filter(pk=session_pk).values_list("update_state", flat=True)
    return peers, list(state.first() or [])


def _store(
    session_pk: int,
    peers: dict[int, PeerRow],
    usernames: dict[int, list[str]],
    states: list[list[Any]],
) -> None:
    now = timezone.now()
    with transaction.atomic():
        TelegramSession.objects.filter(pk=session_pk).update(update_state=states)
        if not peers and not usernames:
            return
        existing = {
            peer.peer_id: peer
            for peer in TelegramPeer.objects.filter(
                session_id=session_pk, peer_id__in=set(peers) | set(usernames)
            )
        }
        for peer_id, (_, access_hash, peer_type, phone) in peers.items():
            peer = existing.get(peer_id) or TelegramPeer(session_id=session_pk, peer_id=peer_id)
            peer.access_hash, peer.peer_type, peer.phone_number = (
                access_hash,
                peer_type,
                phone or "",
            )
            existing[peer_id] = peer
        for peer_id, names in usernames.items():
            if peer_id in existing:
                existing[peer_id].usernames = names
        for peer in existing.values():
            peer.updated_at = now
        TelegramPeer.objects.bulk_create(
            list(existing.values()),
            update_conflicts=True,
            unique_fields=["session", "peer_id"],
            update_fields=["access_hash", "peer_type", "phone_number", "usernames", "updated_at"],
        )
