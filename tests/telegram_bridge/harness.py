"""Real Pyrogram (kurigram 2.2.26) with only the network replaced.

What is replaced, and why: ``HarnessClient.get_session`` returns a ``FakeSession`` instead of
a ``pyrogram.session.Session``, the object that owns an MTProto connection. kurigram opens
one for the main connection (``Client.connect``) and more for file transfers: downloads call
``session.invoke(upload.GetFile(...))`` on a media session, bypassing ``Client.invoke``, so
overriding ``Client.invoke`` alone could not fake them. Replacing the session keeps
everything above it real: ``Client.start``/``stop`` (session string, ``updates.GetState``,
``get_me``, the dispatcher's workers), ``Client.invoke`` (which caches the peers of every
result), every high-level method, the HTML parser, ``FileId`` encoding and chunked
transfers. One consequence: ``Session.invoke``'s own FloodWait sleep (``sleep_threshold``)
does not run, so a FloodWait reaches the caller as it would with ``sleep_threshold=0``.

``FakeTelegram`` answers the requests like the server would (ids, stored messages, edits
that change nothing refused with MESSAGE_NOT_MODIFIED, file chunks) and records each one in
``requests`` as the client built it (after checking it serializes: Pyrogram cannot read some
requests back, a vector of small boxed objects comes back as integers). Answers and updates
go through a TL serialization round trip (``wire``) so they have their wire shape: objects
built directly carry ``None`` where the wire carries empty vectors, and parsing fails on
them.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, TypeVar

from pyrogram import Client, raw, utils
from pyrogram.errors import RPCError
from pyrogram.handlers import (
    CallbackQueryHandler,
    EditedMessageHandler,
    MessageHandler,
)
from pyrogram.raw.core import TLObject
from pyrogram.storage import Storage

T = TypeVar("T", bound=TLObject)
API_ID = 12345
_hashes = itertools.count(9_000_000_001)


def wire(obj: T) -> T:
    """``obj`` as it arrives off the wire (serialized, then read back)."""
    return TLObject.read(BytesIO(obj.write()))


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
        access_hash=next(_hashes),
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
        access_hash=next(_hashes),
    )
    peer = raw.types.PeerChannel(channel_id=channel_id)
    return Chat(peer, utils.get_peer_id(peer), channel)


def session_string(me: raw.types.User) -> str:
    """A kurigram session string for ``me`` (DC 2, a dummy auth key): no login needed."""
    packed = struct.pack(
        Storage.SESSION_STRING_FORMAT, 2, API_ID, False, bytes(256), me.id, bool(me.bot)
    )
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def entity(text: str, part: str, kind: type[T], **extra: Any) -> T:
    """An entity of ``kind`` over the first occurrence of ``part`` (UTF-16 offsets)."""
    start = text.index(part)
    offset = len(text[:start].encode("utf-16-le")) // 2
    return kind(offset=offset, length=len(part.encode("utf-16-le")) // 2, **extra)


# --- The server --------------------------------------------------------------------------------


@dataclass
class Failure:
    function: type[TLObject]
    error: RPCError | str  # an exception, or an RPC error message such as "FLOOD_WAIT_12"
    code: int
    times: int
    when: Callable[[Any], bool] | None


def _channel_key(peer: raw.base.Peer) -> int:
    """Message ids are per channel, and one sequence for everything else."""
    return peer.channel_id if isinstance(peer, raw.types.PeerChannel) else 0


@dataclass
class FakeTelegram:
    """The server side: what was asked (``requests``), what exists, what to fail."""

    me: raw.types.User
    requests: list[TLObject] = field(default_factory=list)
    users: dict[int, raw.types.User] = field(default_factory=dict)
    chats: dict[int, raw.base.Chat] = field(default_factory=dict)
    messages: dict[tuple[int, int], raw.types.Message] = field(default_factory=dict)
    files: dict[tuple[int, str], bytes] = field(default_factory=dict)
    uploads: dict[int, list[bytes]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    _ids: dict[int, itertools.count[int]] = field(default_factory=dict)
    _pts: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _media_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5_000_001))

    def __post_init__(self) -> None:
        self.users[self.me.id] = self.me

    def add(self, *entities: raw.base.User | raw.base.Chat) -> None:
        for item in entities:
            target: dict[int, Any] = self.users if isinstance(item, raw.types.User) else self.chats
            target[item.id] = item

    def next_id(self, peer: raw.base.Peer) -> int:
        return next(self._ids.setdefault(_channel_key(peer), itertools.count(100)))

    def pts(self) -> int:
        return next(self._pts)

    def media_id(self) -> int:
        return next(self._media_ids)

    def store(self, message: raw.types.Message) -> None:
        self.messages[(_channel_key(message.peer_id), message.id)] = message

    def fail(
        self,
        function: type[TLObject],
        error: RPCError | str,
        *,
        code: int = 400,
        times: int = 1,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` matching ``function`` requests with ``error``."""
        self.failures.append(Failure(function, error, code, times, when))

    def sent(self, function: type[T]) -> list[T]:
        """The recorded requests of type ``function``, in order."""
        return [request for request in self.requests if isinstance(request, function)]

    # The answers ------------------------------------------------------------------------

    async def answer(self, query: TLObject) -> Any:
        query.write()  # what the network would do first: fails on a malformed request
        self.requests.append(query)
        self._raise_failure(query)
        handler = _ANSWERS.get(type(query))
        if handler is None:
            raise NotImplementedError(f"the harness has no answer for {query.QUALNAME}")
        result = handler(self, query)
        return result if isinstance(result, bool) else wire(result)

    def _raise_failure(self, query: TLObject) -> None:
        for failure in self.failures:
            if not isinstance(query, failure.function) or failure.times <= 0:
                continue
            if failure.when is not None and not failure.when(query):
                continue
            failure.times -= 1
            if isinstance(failure.error, RPCError):
                raise failure.error
            raise_rpc_error(query, failure.error, failure.code)

    def peer_of(self, input_peer: raw.base.InputPeer) -> raw.base.Peer:
        if isinstance(input_peer, raw.types.InputPeerUser):
            return raw.types.PeerUser(user_id=input_peer.user_id)
        if isinstance(input_peer, raw.types.InputPeerChat):
            return raw.types.PeerChat(chat_id=input_peer.chat_id)
        if isinstance(input_peer, raw.types.InputPeerChannel):
            return raw.types.PeerChannel(channel_id=input_peer.channel_id)
        return raw.types.PeerUser(user_id=self.me.id)

    def updates(self, *updates: raw.base.Update) -> raw.types.Updates:
        return raw.types.Updates(
            updates=list(updates),
            users=list(self.users.values()),
            chats=list(self.chats.values()),
            date=now(),
            seq=0,
        )

    def new_message_update(self, message: raw.types.Message) -> raw.base.Update:
        channel = isinstance(message.peer_id, raw.types.PeerChannel)
        kind = raw.types.UpdateNewChannelMessage if channel else raw.types.UpdateNewMessage
        return kind(message=message, pts=self.pts(), pts_count=1)

    def edit_message_update(self, message: raw.types.Message) -> raw.base.Update:
        channel = isinstance(message.peer_id, raw.types.PeerChannel)
        kind = raw.types.UpdateEditChannelMessage if channel else raw.types.UpdateEditMessage
        return kind(message=message, pts=self.pts(), pts_count=1)

    def _outgoing(self, peer: raw.base.InputPeer, text: str, **fields: Any) -> raw.types.Message:
        target = self.peer_of(peer)
        message = raw.types.Message(
            id=self.next_id(target),
            peer_id=target,
            date=now(),
            message=text,
            out=True,
            from_id=raw.types.PeerUser(user_id=self.me.id),
            **fields,
        )
        self.store(wire(message))
        return message

    def _sent_updates(self, query: Any, message: raw.types.Message) -> raw.types.Updates:
        return self.updates(
            raw.types.UpdateMessageID(id=message.id, random_id=query.random_id),
            self.new_message_update(message),
        )


def raise_rpc_error(query: TLObject, message: str, code: int = 400) -> None:
    """Raise what Pyrogram raises when the server answers ``query`` with this RPC error."""
    RPCError.raise_it(raw.types.RpcError(error_code=code, error_message=message), type(query))


def _reply_header(query: Any) -> raw.types.MessageReplyHeader | None:
    reply_to = getattr(query, "reply_to", None)
    if isinstance(reply_to, raw.types.InputReplyToMessage):
        return raw.types.MessageReplyHeader(reply_to_msg_id=reply_to.reply_to_msg_id)
    return None


def _send_message(server: FakeTelegram, query: Any) -> raw.types.Updates:
    if not query.message.strip():
        raise_rpc_error(query, "MESSAGE_EMPTY")
    message = server._outgoing(
        query.peer,
        query.message,
        entities=query.entities,
        reply_to=_reply_header(query),
        reply_markup=query.reply_markup,
    )
    return server._sent_updates(query, message)


def _edit_message(server: FakeTelegram, query: Any) -> raw.types.Updates:
    key = (_channel_key(server.peer_of(query.peer)), query.id)
    old = server.messages.get(key)
    if old is None:
        raise_rpc_error(query, "MESSAGE_ID_INVALID")
    new = wire(old)
    if query.message is not None:
        new.message, new.entities = query.message, query.entities
    new.reply_markup = query.reply_markup
    if _same(old, new):
        raise_rpc_error(query, "MESSAGE_NOT_MODIFIED")
    new.edit_date = now()
    server.store(wire(new))
    return server.updates(server.edit_message_update(new))


def _same(old: raw.types.Message, new: raw.types.Message) -> bool:
    def shape(message: raw.types.Message) -> tuple[str, bytes, bytes]:
        entities = b"".join(item.write() for item in message.entities or [])
        markup = message.reply_markup.write() if message.reply_markup else b""
        return message.message, entities, markup

    return shape(old) == shape(new)


def _send_media(server: FakeTelegram, query: Any) -> raw.types.Updates:
    media = query.media
    data = b"".join(server.uploads.get(media.file.id, []))
    media_id = server.media_id()
    if isinstance(media, raw.types.InputMediaUploadedPhoto):
        sizes = [raw.types.PhotoSize(type="x", w=800, h=600, size=len(data))]
        server.files[(media_id, "x")] = data
        result: raw.base.MessageMedia = raw.types.MessageMediaPhoto(
            photo=raw.types.Photo(
                id=media_id, access_hash=1, file_reference=b"", date=now(), sizes=sizes, dc_id=2
            )
        )
    else:
        server.files[(media_id, "")] = data
        result = raw.types.MessageMediaDocument(
            document=raw.types.Document(
                id=media_id,
                access_hash=1,
                file_reference=b"",
                date=now(),
                dc_id=2,
                mime_type=media.mime_type,
                size=len(data),
                attributes=media.attributes,
            )
        )
    message = server._outgoing(
        query.peer,
        query.message,
        entities=query.entities,
        media=result,
        reply_to=_reply_header(query),
    )
    return server._sent_updates(query, message)


def _save_file_part(server: FakeTelegram, query: Any) -> bool:
    server.uploads.setdefault(query.file_id, []).append(query.bytes)
    return True


def _get_file(server: FakeTelegram, query: Any) -> raw.types.upload.File:
    location = query.location
    size = (
        getattr(location, "thumb_size", "")
        if isinstance(location, raw.types.InputPhotoFileLocation)
        else ""
    )
    data = server.files.get((location.id, size))
    if data is None:
        raise_rpc_error(query, "LOCATION_INVALID")
    chunk = data[query.offset : query.offset + query.limit]
    return raw.types.upload.File(type=raw.types.storage.FilePartial(), mtime=now(), bytes=chunk)


def _get_messages(server: FakeTelegram, query: Any) -> raw.base.messages.Messages:
    channel = getattr(query, "channel", None)
    key = getattr(channel, "channel_id", 0)  # kurigram passes an InputPeerChannel here
    found: list[raw.base.Message] = []
    for wanted in query.id:
        message_id = wanted.id
        if isinstance(wanted, raw.types.InputMessageReplyTo):
            replying = server.messages.get((key, wanted.id))
            header = getattr(replying, "reply_to", None)
            message_id = getattr(header, "reply_to_msg_id", None) or 0
        found.append(
            server.messages.get((key, message_id)) or raw.types.MessageEmpty(id=message_id)
        )
    users, chats = list(server.users.values()), list(server.chats.values())
    if key:
        return raw.types.messages.ChannelMessages(
            pts=server.pts(), count=len(found), messages=found, topics=[], chats=chats, users=users
        )
    return raw.types.messages.Messages(messages=found, topics=[], chats=chats, users=users)


def _get_full_user(server: FakeTelegram, query: Any) -> raw.types.users.UserFull:
    full = raw.types.UserFull(
        id=server.me.id,
        settings=raw.types.PeerSettings(),
        notify_settings=raw.types.PeerNotifySettings(),
        common_chats_count=0,
    )
    return raw.types.users.UserFull(full_user=full, chats=[], users=[server.me])


def _get_state(server: FakeTelegram, query: Any) -> raw.types.updates.State:
    return raw.types.updates.State(pts=server.pts(), qts=0, date=now(), seq=0, unread_count=0)


_F = raw.functions
_ANSWERS: dict[type[TLObject], Callable[[FakeTelegram, Any], Any]] = {
    _F.messages.SendMessage: _send_message,
    _F.messages.EditMessage: _edit_message,
    _F.messages.SendMedia: _send_media,
    _F.messages.SetTyping: lambda server, query: True,
    _F.messages.SendReaction: lambda server, query: server.updates(),
    _F.messages.SetBotCallbackAnswer: lambda server, query: True,
    _F.messages.GetMessages: _get_messages,
    _F.channels.GetMessages: _get_messages,
    _F.upload.SaveFilePart: _save_file_part,
    _F.upload.GetFile: _get_file,
    _F.users.GetFullUser: _get_full_user,
    _F.updates.GetState: _get_state,
}


# --- The client -------------------------------------------------------------------------------


class FakeSession:
    """Stands in for ``pyrogram.session.Session``: ``invoke`` asks the fake server."""

    def __init__(self, server: FakeTelegram) -> None:
        self.server = server

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def invoke(self, query: TLObject, *args: Any, **kwargs: Any) -> Any:
        return await self.server.answer(query)


class HarnessClient(Client):
    """``pyrogram.Client`` signed in as ``server.me`` whose sessions are all ``FakeSession``."""

    def __init__(self, server: FakeTelegram, **options: Any) -> None:
        self.server = server
        options = {"workers": 1, "sleep_threshold": 0, **options}
        super().__init__(
            "harness", session_string=session_string(server.me), in_memory=True, **options
        )

    async def get_session(self, *args: Any, **kwargs: Any) -> FakeSession:
        return FakeSession(self.server)


# --- The harness: a started client, builders, delivery ------------------------------------------


def jpeg(size: int) -> bytes:
    """``size`` bytes that sniff as a JPEG."""
    return (b"\xff\xd8\xff\xe0" + bytes(max(size - 4, 0)))[:size]


class Inbox:
    """Handlers in their own group (so the code under test's handlers still run) that collect
    what the real dispatcher parsed: messages, edited messages, callback queries."""

    GROUP = -100

    def __init__(self, client: Client) -> None:
        self.items: asyncio.Queue[Any] = asyncio.Queue()
        for kind in (MessageHandler, EditedMessageHandler, CallbackQueryHandler):
            client.add_handler(kind(self._collect), group=self.GROUP)
        self.client = client

    async def _collect(self, client: Client, update: Any) -> None:
        await self.items.put(update)

    async def ready(self) -> None:
        """Handlers are added by a task; wait until the dispatcher has all three."""
        while len(self.client.dispatcher.groups.get(self.GROUP, [])) < 3:
            await asyncio.sleep(0)

    async def next(self, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.items.get(), timeout)


class TelegramHarness:
    """A started ``HarnessClient`` plus builders for raw messages and media.

    ``deliver`` feeds one raw message through ``Client.handle_updates`` and returns what the
    dispatcher handed to handlers (a ``pyrogram.types.Message``)."""

    def __init__(self, me: raw.types.User, **client_options: Any) -> None:
        self.me = me
        self.server = FakeTelegram(me)
        self.client = HarnessClient(self.server, **client_options)
        self.inbox: Inbox | None = None

    async def start(self) -> None:
        await self.client.start()
        self.inbox = Inbox(self.client)
        await self.inbox.ready()

    async def stop(self) -> None:
        if self.client.is_connected:
            await self.client.stop()

    async def meet(self, *chats: Chat | raw.types.User) -> None:
        """Make peers known (server and client storage) without delivering anything."""
        entities = [item.entity if isinstance(item, Chat) else item for item in chats]
        self.server.add(*entities)
        await self.client.fetch_peers([e for e in entities if isinstance(e, raw.types.User)])
        await self.client.fetch_peers([e for e in entities if not isinstance(e, raw.types.User)])

    # Messages ----------------------------------------------------------------------------

    def message(
        self,
        chat: Chat,
        sender: raw.types.User | None,
        text: str = "",
        *,
        entities: list[raw.base.MessageEntity] | None = None,
        media: raw.base.MessageMedia | None = None,
        reply_to: int | None = None,
        fwd_from: raw.types.MessageFwdHeader | None = None,
        grouped_id: int | None = None,
        message_id: int | None = None,
        mentioned: bool | None = None,
    ) -> raw.types.Message:
        """A raw message in ``chat`` from ``sender`` (None: a channel post). In private chats
        Telegram leaves ``from_id`` out of incoming messages; elsewhere it is the sender."""
        self.server.add(chat.entity, *([sender] if sender else []))
        out = sender is not None and sender.id == self.me.id
        from_id = raw.types.PeerUser(user_id=sender.id) if sender else None
        if isinstance(chat.peer, raw.types.PeerUser) and not out:
            from_id = None
        return raw.types.Message(
            id=message_id or self.server.next_id(chat.peer),
            peer_id=chat.peer,
            date=now(),
            message=text,
            entities=entities,
            media=media,
            out=out or None,
            from_id=from_id,
            reply_to=raw.types.MessageReplyHeader(reply_to_msg_id=reply_to) if reply_to else None,
            fwd_from=fwd_from,
            grouped_id=grouped_id,
            post=True if sender is None else None,
            mentioned=mentioned,
        )

    def service(
        self, chat: Chat, sender: raw.types.User, action: raw.base.MessageAction
    ) -> raw.types.MessageService:
        self.server.add(chat.entity, sender)
        return raw.types.MessageService(
            id=self.server.next_id(chat.peer),
            peer_id=chat.peer,
            date=now(),
            action=action,
            from_id=raw.types.PeerUser(user_id=sender.id),
        )

    async def deliver(self, message: raw.base.Message, *, edited: bool = False) -> Any:
        """Feed ``message`` as a new (or edited) message update; return the parsed object."""
        if isinstance(message, raw.types.Message):
            if edited and message.edit_date is None:
                message.edit_date = now()
            self.server.store(wire(message))
        server = self.server
        update = (server.edit_message_update if edited else server.new_message_update)(message)
        await self.client.handle_updates(wire(server.updates(update)))
        assert self.inbox is not None, "start() the harness first"
        return await self.inbox.next()

    async def press(self, user: raw.types.User, chat: Chat, message_id: int, data: bytes) -> Any:
        """A callback-query update: ``user`` pressed an inline button under ``message_id``."""
        self.server.add(user)
        update = raw.types.UpdateBotCallbackQuery(
            query_id=next(_hashes),
            user_id=user.id,
            peer=chat.peer,
            msg_id=message_id,
            chat_instance=1,
            data=data,
        )
        await self.client.handle_updates(wire(self.server.updates(update)))
        assert self.inbox is not None, "start() the harness first"
        return await self.inbox.next()

    # Media ----------------------------------------------------------------------------------

    def photo(self, *sizes: tuple[str, int, int, bytes]) -> raw.types.MessageMediaPhoto:
        """A photo with ``(type, width, height, content)`` sizes; each size is downloadable."""
        photo_id = self.server.media_id()
        for kind, _, _, data in sizes:
            self.server.files[(photo_id, kind)] = data
        return raw.types.MessageMediaPhoto(
            photo=raw.types.Photo(
                id=photo_id,
                access_hash=1,
                file_reference=b"ref",
                date=now(),
                dc_id=2,
                sizes=[raw.types.PhotoSize(type=k, w=w, h=h, size=len(d)) for k, w, h, d in sizes],
            )
        )

    def document(
        self,
        data: bytes,
        mime_type: str,
        *attributes: raw.base.DocumentAttribute,
        file_name: str | None = None,
        downloadable: bool = True,
        **media_flags: Any,
    ) -> raw.types.MessageMediaDocument:
        """A document holding ``data``; ``downloadable=False`` makes fetching it fail."""
        document_id = self.server.media_id()
        if downloadable:
            self.server.files[(document_id, "")] = data
        names = [raw.types.DocumentAttributeFilename(file_name=file_name)] if file_name else []
        return raw.types.MessageMediaDocument(
            document=raw.types.Document(
                id=document_id,
                access_hash=1,
                file_reference=b"ref",
                date=now(),
                dc_id=2,
                mime_type=mime_type,
                size=len(data),
                attributes=[*attributes, *names],
            ),
            **media_flags,
        )

    def voice(self, seconds: int = 3) -> raw.types.MessageMediaDocument:
        audio = raw.types.DocumentAttributeAudio(duration=seconds, voice=True)
        return self.document(b"OggS" + bytes(60), "audio/ogg", audio, voice=True)

    def audio(
        self, file_name: str = "song.mp3", seconds: int = 200
    ) -> raw.types.MessageMediaDocument:
        audio = raw.types.DocumentAttributeAudio(duration=seconds, title="Song", performer="Band")
        return self.document(b"ID3" + bytes(80), "audio/mpeg", audio, file_name=file_name)

    def video(
        self, width: int = 1280, height: int = 720, seconds: float = 12.0
    ) -> raw.types.MessageMediaDocument:
        attribute = raw.types.DocumentAttributeVideo(duration=seconds, w=width, h=height)
        return self.document(bytes(100), "video/mp4", attribute, file_name="clip.mp4", video=True)

    def video_note(self, length: int = 240, seconds: float = 5.0) -> raw.types.MessageMediaDocument:
        attribute = raw.types.DocumentAttributeVideo(
            duration=seconds, w=length, h=length, round_message=True
        )
        return self.document(bytes(50), "video/mp4", attribute, round=True)

    def animation(self) -> raw.types.MessageMediaDocument:
        attributes = (
            raw.types.DocumentAttributeAnimated(),
            raw.types.DocumentAttributeVideo(duration=2.0, w=320, h=240),
        )
        return self.document(bytes(40), "video/mp4", *attributes, file_name="fun.mp4")

    def sticker(self, emoji: str) -> raw.types.MessageMediaDocument:
        attributes = (
            raw.types.DocumentAttributeSticker(
                alt=emoji, stickerset=raw.types.InputStickerSetEmpty()
            ),
            raw.types.DocumentAttributeImageSize(w=512, h=512),
        )
        return self.document(b"RIFF\x00\x00\x00\x00WEBP", "image/webp", *attributes)


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
    answers = [
        raw.types.PollAnswer(
            text=raw.types.TextWithEntities(text=option, entities=[]), option=bytes([index])
        )
        for index, option in enumerate(options)
    ]
    question_text = raw.types.TextWithEntities(text=question, entities=[])
    return raw.types.MessageMediaPoll(
        poll=raw.types.Poll(id=next(_hashes), question=question_text, answers=answers, hash=0),
        results=raw.types.PollResults(),
    )


def forwarded_from(user: raw.types.User) -> raw.types.MessageFwdHeader:
    return raw.types.MessageFwdHeader(
        date=now() - 3600, from_id=raw.types.PeerUser(user_id=user.id)
    )
