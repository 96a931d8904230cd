"""``FakeTelegram``: the server side of the harness.

It answers the requests like the server would (ids, stored messages, edits that change nothing
refused with MESSAGE_NOT_MODIFIED, a second send with the same ``random_id`` refused with
RANDOM_ID_DUPLICATE, file chunks, the update difference a client asks for at start) and
records each one in ``requests`` as the client built it (after checking it serializes:
Pyrogram cannot read some requests back, a vector of small boxed objects comes back as
integers), with the monotonic time it arrived in ``request_times``. Answers go through a TL
round trip (``wire``) so they have their wire shape. ``hang`` makes a request's answer never
come, as when a connection dies (or the process is killed) while it is in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pyrogram import raw, utils
from pyrogram.errors.rpc_error import RPCError
from pyrogram.raw.core import TLObject

from telegram_bridge.faketelegram.builders import ChatMessage, T, now, wire


@dataclass
class Hang:
    function: type[TLObject[Any]]
    handled: bool  # the server acts on the request first (only its answer is lost)
    times: int
    when: Callable[[Any], bool] | None


@dataclass
class Failure:
    function: type[TLObject[Any]]
    error: RPCError | str  # an exception, or an RPC error message such as "FLOOD_WAIT_12"
    code: int
    times: int
    when: Callable[[Any], bool] | None


def _channel_key(peer: raw.base.Peer) -> int:
    """Message ids are per channel, and one sequence for everything else."""
    return peer.channel_id if isinstance(peer, raw.types.PeerChannel) else 0


@dataclass
class FakeTelegram:
    """The server side: what was asked (``requests``), what exists, what to fail.

    ``missed`` holds messages that arrived while no client was connected: the next
    ``updates.GetDifference`` (a client's gap recovery at start) hands them over once.
    ``on_request`` (if set) sees each request as it arrives, before it is answered.
    ``refused_connections``: how many coming connection attempts fail, as when Telegram's
    data centre is unreachable."""

    me: raw.types.User
    requests: list[TLObject[Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    users: dict[int, raw.types.User] = field(default_factory=dict)
    chats: dict[int, raw.base.Chat] = field(default_factory=dict)
    messages: dict[tuple[int, int], raw.types.Message] = field(default_factory=dict)
    files: dict[tuple[int, str], bytes] = field(default_factory=dict)
    uploads: dict[int, list[bytes]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    hangs: list[Hang] = field(default_factory=list)
    random_ids: set[int] = field(default_factory=set)
    missed: list[raw.types.Message] = field(default_factory=list)
    on_request: Callable[[TLObject[Any]], None] | None = None
    refused_connections: int = 0
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
        function: type[TLObject[Any]],
        error: RPCError | str,
        *,
        code: int = 400,
        times: int = 1,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` matching ``function`` requests with ``error``."""
        self.failures.append(Failure(function, error, code, times, when))

    def hang(
        self,
        function: type[TLObject[Any]],
        *,
        handled: bool,
        times: int = 1,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        """The next ``times`` matching ``function`` requests get no answer (the caller waits
        until cancelled); with ``handled`` the server carries them out first."""
        self.hangs.append(Hang(function, handled, times, when))

    def sent(self, function: type[T], chat_id: int | None = None) -> list[T]:
        """The recorded requests of type ``function``, in order; only those addressed to
        ``chat_id`` (a Pyrogram chat id) when it is given."""
        return [
            request
            for request in self.requests
            if isinstance(request, function) and (chat_id is None or addressee(request) == chat_id)
        ]

    def timed(self, function: type[T], chat_id: int | None = None) -> list[tuple[float, T]]:
        """Like ``sent``, with the monotonic time each request arrived."""
        return [
            (at, request)
            for at, request in zip(self.request_times, self.requests, strict=True)
            if isinstance(request, function) and (chat_id is None or addressee(request) == chat_id)
        ]

    # The answers ------------------------------------------------------------------------

    async def answer(self, query: TLObject[Any]) -> Any:
        query.write()  # what the network would do first: fails on a malformed request
        self.requests.append(query)
        self.request_times.append(time.monotonic())
        if self.on_request is not None:
            self.on_request(query)
        hang = self._take_hang(query)
        if hang is not None and not hang.handled:
            await asyncio.Event().wait()
        self._raise_failure(query)
        handler = _ANSWERS.get(type(query))
        if handler is None:
            raise NotImplementedError(f"the harness has no answer for {query.QUALNAME}")
        result = handler(self, query)
        if hang is not None:
            await asyncio.Event().wait()
        return result if isinstance(result, bool) else wire(result)

    def _take_hang(self, query: TLObject[Any]) -> Hang | None:
        for hang in self.hangs:
            if not isinstance(query, hang.function) or hang.times <= 0:
                continue
            if hang.when is not None and not hang.when(query):
                continue
            hang.times -= 1
            return hang
        return None

    def _raise_failure(self, query: TLObject[Any]) -> None:
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
        """``updates`` with the users and chats they mention, as Telegram sends them."""
        users, chats = self.referenced(*updates)
        return raw.types.Updates(updates=list(updates), users=users, chats=chats, date=now(), seq=0)

    def referenced(
        self, *objects: TLObject[Any]
    ) -> tuple[list[raw.base.User], list[raw.base.Chat]]:
        """The known users (``me`` always) and chats that messages or updates refer to:
        peers, senders, forward origins, text mentions, who pressed a button."""
        peers: list[Any] = []
        user_ids = {self.me.id}
        for item in objects:
            inner = getattr(item, "message", None)  # an update's message (a message's is text)
            message = inner if isinstance(inner, TLObject) else item
            fwd_from = getattr(message, "fwd_from", None)
            peers += [getattr(message, "peer_id", None), getattr(message, "from_id", None)]
            peers += [getattr(item, "peer", None), getattr(fwd_from, "from_id", None)]
            user_ids.add(getattr(item, "user_id", None) or self.me.id)
            user_ids.update(getattr(getattr(message, "action", None), "users", None) or [])
            for found in getattr(message, "entities", None) or []:
                user_ids.add(getattr(found, "user_id", None) or self.me.id)
        chat_ids: set[int] = set()
        for peer in peers:
            if isinstance(peer, raw.types.PeerUser):
                user_ids.add(peer.user_id)
            elif isinstance(peer, raw.types.PeerChat):
                chat_ids.add(peer.chat_id)
            elif isinstance(peer, raw.types.PeerChannel):
                chat_ids.add(peer.channel_id)
        users: list[raw.base.User] = [self.users[i] for i in sorted(user_ids) if i in self.users]
        return users, [self.chats[i] for i in sorted(chat_ids) if i in self.chats]

    def new_message_update(self, message: ChatMessage) -> raw.base.Update:
        channel = isinstance(message.peer_id, raw.types.PeerChannel)
        kind = raw.types.UpdateNewChannelMessage if channel else raw.types.UpdateNewMessage
        return kind(message=message, pts=self.pts(), pts_count=1)

    def edit_message_update(self, message: ChatMessage) -> raw.base.Update:
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

    def _take_random_id(self, query: Any) -> None:
        """Telegram drops a second send with the same random id."""
        if query.random_id in self.random_ids:
            raise_rpc_error(query, "RANDOM_ID_DUPLICATE")
        self.random_ids.add(query.random_id)

    def _sent_updates(self, query: Any, message: raw.types.Message) -> raw.types.Updates:
        return self.updates(
            raw.types.UpdateMessageID(id=message.id, random_id=query.random_id),
            self.new_message_update(message),
        )


def addressee(request: TLObject[Any]) -> int | None:
    """The Pyrogram chat id a request's ``peer`` names (None if it has none)."""
    peer = getattr(request, "peer", None)
    if isinstance(peer, raw.types.InputPeerUser):
        return peer.user_id
    if isinstance(peer, raw.types.InputPeerChat):
        return -peer.chat_id
    if isinstance(peer, raw.types.InputPeerChannel):
        return utils.get_channel_id(peer.channel_id)
    return None


def raise_rpc_error(query: TLObject[Any], message: str, code: int = 400) -> NoReturn:
    """Raise what Pyrogram raises when the server answers ``query`` with this RPC error."""
    RPCError.raise_it(raw.types.RpcError(error_code=code, error_message=message), type(query))
    raise AssertionError("RPCError.raise_it always raises")  # kurigram does not annotate it


def _reply_header(query: Any) -> raw.types.MessageReplyHeader | None:
    reply_to = getattr(query, "reply_to", None)
    if isinstance(reply_to, raw.types.InputReplyToMessage):
        return raw.types.MessageReplyHeader(reply_to_msg_id=reply_to.reply_to_msg_id)
    return None


def _send_message(server: FakeTelegram, query: Any) -> raw.types.Updates:
    if not query.message.strip():
        raise_rpc_error(query, "MESSAGE_EMPTY")
    server._take_random_id(query)
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
    server._take_random_id(query)
    media = query.media
    data = b"".join(server.uploads.get(media.file.id, []))
    media_id = server.media_id()
    if isinstance(media, raw.types.InputMediaUploadedPhoto):
        sizes: list[raw.base.PhotoSize] = [
            raw.types.PhotoSize(type="x", w=800, h=600, size=len(data))
        ]
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
    users, chats = server.referenced(*found)
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


def _state(server: FakeTelegram) -> raw.types.updates.State:
    return raw.types.updates.State(pts=server.pts(), qts=0, date=now(), seq=0, unread_count=0)


def _get_difference(server: FakeTelegram, query: Any) -> raw.base.updates.Difference:
    """What arrived while the client was away (``missed``), once; then nothing."""
    missed, server.missed = server.missed, []
    if not missed:
        return raw.types.updates.DifferenceEmpty(date=now(), seq=0)
    for message in missed:
        server.store(wire(message))
    users, chats = server.referenced(*missed)
    return raw.types.updates.Difference(
        new_messages=list(missed),
        new_encrypted_messages=[],
        other_updates=[],
        chats=chats,
        users=users,
        state=_state(server),
    )


_F = raw.functions
_ANSWERS: dict[type[TLObject[Any]], Callable[[FakeTelegram, Any], Any]] = {
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
    _F.updates.GetState: lambda server, query: _state(server),
    _F.updates.GetDifference: _get_difference,
    _F.updates.GetChannelDifference: lambda server, query: raw.types.updates.ChannelDifferenceEmpty(
        pts=query.pts, final=True
    ),
    _F.bots.SetBotCommands: lambda server, query: True,
}
