"""Raw MTProto objects for tests and benchmarks: people, chats, entities, media that needs no
server, and the TL round trip (``wire``) that gives an object its off-the-wire shape."""

from __future__ import annotations

import base64
import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar

from pyrogram import raw, utils
from pyrogram.raw.core import TLObject
from pyrogram.storage import Storage

T = TypeVar("T", bound=TLObject[Any])
# What a chat holds: a message or a service message (``raw.base.Message`` is also MessageEmpty).
ChatMessage = raw.types.Message | raw.types.MessageService
API_ID = 12345
hashes = itertools.count(9_000_000_001)  # access hashes, query ids: unique across a run


def wire(obj: T) -> T:
    """``obj`` as it arrives off the wire (serialized, then read back)."""
    read: T = TLObject.read(BytesIO(obj.write()))
    return read


def now() -> int:
    return int(time.time())


# --- People and chats ------------------------------------------------------------------------


def make_user(
    user_id: int,
    first_name: str,
    *,
    username: str | None = None,
    last_name: str | None = None,
    bot: bool = False,
    is_self: bool = False,
) -> raw.types.User:
    return raw.types.User(
        id=user_id,
        first_name=first_name,
        last_name=last_name,
        username=username,
        bot=bot or None,
        is_self=is_self or None,
        access_hash=next(hashes),
        bot_info_version=1 if bot else None,  # shares its flag bit with ``bot`` on the wire
    )


@dataclass(frozen=True)
class Chat:
    """Where a message lives: its raw peer, its Pyrogram id and the raw user/chat behind it."""

    peer: raw.base.Peer
    chat_id: int
    entity: raw.base.User | raw.base.Chat


def private_chat(user: raw.types.User) -> Chat:
    return Chat(raw.types.PeerUser(user_id=user.id), user.id, user)


def group_chat(chat_id: int, title: str) -> Chat:
    chat = raw.types.Chat(
        id=chat_id,
        title=title,
        photo=raw.types.ChatPhotoEmpty(),
        participants_count=3,
        date=now(),
        version=1,
    )
    return Chat(raw.types.PeerChat(chat_id=chat_id), -chat_id, chat)


def supergroup_chat(channel_id: int, title: str, *, broadcast: bool = False) -> Chat:
    channel = raw.types.Channel(
        id=channel_id,
        title=title,
        photo=raw.types.ChatPhotoEmpty(),
        date=now(),
        megagroup=None if broadcast else True,
        broadcast=broadcast or None,
        access_hash=next(hashes),
    )
    peer = raw.types.PeerChannel(channel_id=channel_id)
    return Chat(peer, utils.get_peer_id(peer), channel)


def session_string(me: raw.types.User) -> str:
    """A kurigram session string for ``me`` (DC 2, a dummy auth key): no login needed."""
    packed = struct.pack(
        Storage.SESSION_STRING_FORMAT, 2, API_ID, False, bytes(256), me.id, bool(me.bot)
    )
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def entity(text: str, part: str, kind: Callable[..., T], **extra: Any) -> T:
    """An entity of ``kind`` over the first occurrence of ``part`` (UTF-16 offsets)."""
    start = text.index(part)
    offset = len(text[:start].encode("utf-16-le")) // 2
    return kind(offset=offset, length=len(part.encode("utf-16-le")) // 2, **extra)


def utf16_length(text: str) -> int:
    """How long Telegram thinks ``text`` is (it counts UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


# --- Media that needs no stored file ---------------------------------------------------------


def jpeg(size: int) -> bytes:
    """``size`` bytes that sniff as a JPEG."""
    return (b"\xff\xd8\xff\xe0" + bytes(max(size - 4, 0)))[:size]


def location(latitude: float, longitude: float) -> raw.types.MessageMediaGeo:
    return raw.types.MessageMediaGeo(
        geo=raw.types.GeoPoint(lat=latitude, long=longitude, access_hash=0)
    )


def venue(
    latitude: float, longitude: float, title: str, address: str
) -> raw.types.MessageMediaVenue:
    return raw.types.MessageMediaVenue(
        geo=raw.types.GeoPoint(lat=latitude, long=longitude, access_hash=0),
        title=title,
        address=address,
        provider="foursquare",
        venue_id="v1",
        venue_type="food",
    )


def contact(phone: str, first_name: str, last_name: str = "") -> raw.types.MessageMediaContact:
    return raw.types.MessageMediaContact(
        phone_number=phone, first_name=first_name, last_name=last_name, vcard="", user_id=0
    )


def poll(question: str, *options: str) -> raw.types.MessageMediaPoll:
    answers: list[raw.base.PollAnswer] = [
        raw.types.PollAnswer(
            text=raw.types.TextWithEntities(text=option, entities=[]), option=bytes([index])
        )
        for index, option in enumerate(options)
    ]
    question_text = raw.types.TextWithEntities(text=question, entities=[])
    return raw.types.MessageMediaPoll(
        poll=raw.types.Poll(id=next(hashes), question=question_text, answers=answers, hash=0),
        results=raw.types.PollResults(),
    )


def dice(emoji: str = "🎲", value: int = 4) -> raw.types.MessageMediaDice:
    """A media kind the bridge has no reading for."""
    return raw.types.MessageMediaDice(value=value, emoticon=emoji)


def forwarded_from(user: raw.types.User) -> raw.types.MessageFwdHeader:
    return raw.types.MessageFwdHeader(
        date=now() - 3600, from_id=raw.types.PeerUser(user_id=user.id)
    )
