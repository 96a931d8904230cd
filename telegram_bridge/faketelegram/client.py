"""The client side of the harness: real ``pyrogram.Client`` whose sessions ask ``FakeTelegram``.

``HarnessClient.get_session`` returns a ``FakeSession`` instead of a ``pyrogram.session.Session``,
the object that owns an MTProto connection. kurigram opens one for the main connection
(``Client.connect``) and more for file transfers: downloads call
``session.invoke(upload.GetFile(...))`` on a media session, bypassing ``Client.invoke``, so
overriding ``Client.invoke`` alone could not fake them. Replacing the session keeps everything
above it real: ``Client.start``/``stop`` (session string, ``updates.GetState``, gap recovery,
``get_me``, the dispatcher's workers), ``Client.invoke`` (which caches the peers of every
result), every high-level method, the HTML parser, ``FileId`` encoding and chunked transfers.
One consequence: ``Session.invoke``'s own FloodWait sleep (``sleep_threshold``) does not run,
so a FloodWait reaches the caller as it would with ``sleep_threshold=0``.

``TelegramHarness`` builds raw messages and media against one ``FakeTelegram`` and feeds them
through ``Client.handle_updates``: ``push``/``push_press`` only feed (the code under test's
handlers take it from there); ``deliver``/``press`` also start an ``Inbox`` and return what
the dispatcher parsed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyrogram import Client, raw
from pyrogram.handlers import CallbackQueryHandler, EditedMessageHandler, MessageHandler
from pyrogram.raw.core import TLObject

from telegram_bridge.faketelegram.builders import (
    Chat,
    ChatMessage,
    hashes,
    now,
    session_string,
    wire,
)
from telegram_bridge.faketelegram.server import FakeTelegram

__all__ = ["FakeSession", "HarnessClient", "Inbox", "TelegramHarness"]


class FakeSession:
    """Stands in for ``pyrogram.session.Session``: ``invoke`` asks the fake server."""

    def __init__(self, server: FakeTelegram) -> None:
        self.server = server

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def invoke(self, query: TLObject[Any], *args: Any, **kwargs: Any) -> Any:
        return await self.server.answer(query)


class HarnessClient(Client):
    """``pyrogram.Client`` signed in as ``server.me`` whose sessions are all ``FakeSession``."""

    def __init__(self, server: FakeTelegram, **options: Any) -> None:
        """``options`` go to ``Client``; with a ``storage_engine`` (the bridge's database
        storage, say) it is used instead of an in-memory session for ``server.me``."""
        self.server = server
        options = {"workers": 1, "sleep_threshold": 0, **options}
        if "storage_engine" not in options:
            options.update(session_string=session_string(server.me), in_memory=True)
        super().__init__("harness", **options)

    async def get_session(  # type: ignore[override]  # a FakeSession stands in for a Session
        self, *args: Any, **kwargs: Any
    ) -> FakeSession:
        """The session, unless the server is unreachable for now (``refuse_connections``):
        then what a failed TCP connect raises, as a real session's start would."""
        if self.server.refused_connections > 0:
            self.server.refused_connections -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        return FakeSession(self.server)


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
    """A ``HarnessClient`` plus builders for raw messages and media, on one ``FakeTelegram``.

    ``start`` starts the client with an ``Inbox``; code that starts the client itself (the
    bridge) takes ``client`` unstarted and is fed with ``push``. ``new_client`` makes another
    client of the same account on the same server (a restart)."""

    def __init__(self, me: raw.types.User, **client_options: Any) -> None:
        self.me = me
        self.server = FakeTelegram(me)
        self.client = HarnessClient(self.server, **client_options)
        self.inbox: Inbox | None = None

    def new_client(self, **client_options: Any) -> HarnessClient:
        """Another client signed in as ``me`` against this server; it becomes ``client``."""
        self.client = HarnessClient(self.server, **client_options)
        return self.client

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
        date: int | None = None,
    ) -> raw.types.Message:
        """A raw message in ``chat`` from ``sender`` (None: a channel post), sent now or at
        ``date`` (a Unix time). In private chats Telegram leaves ``from_id`` out of incoming
        messages; elsewhere it is the sender."""
        self.server.add(chat.entity, *([sender] if sender else []))
        out = sender is not None and sender.id == self.me.id
        from_id = raw.types.PeerUser(user_id=sender.id) if sender else None
        if isinstance(chat.peer, raw.types.PeerUser) and not out:
            from_id = None
        return raw.types.Message(
            id=message_id or self.server.next_id(chat.peer),
            peer_id=chat.peer,
            date=date or now(),
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

    async def push(self, message: ChatMessage, *, edited: bool = False) -> None:
        """Feed ``message`` as a new (or edited) message update, as Telegram pushes it."""
        if isinstance(message, raw.types.Message):
            if edited and message.edit_date is None:
                message.edit_date = now()
            self.server.store(wire(message))
        server = self.server
        update = (server.edit_message_update if edited else server.new_message_update)(message)
        await self.push_update(update)

    async def push_press(
        self, user: raw.types.User, chat: Chat, message_id: int, data: bytes
    ) -> None:
        """A callback-query update: ``user`` pressed an inline button under ``message_id``."""
        self.server.add(user)
        update = raw.types.UpdateBotCallbackQuery(
            query_id=next(hashes),
            user_id=user.id,
            peer=chat.peer,
            msg_id=message_id,
            chat_instance=1,
            data=data,
        )
        await self.push_update(update)

    async def push_update(self, *updates: raw.base.Update) -> None:
        """Feed raw updates (with every known user and chat) through ``handle_updates``."""
        pushed = wire(self.server.updates(*updates))
        await self.client.handle_updates(pushed)  # type: ignore[no-untyped-call]  # unannotated

    async def deliver(self, message: ChatMessage, *, edited: bool = False) -> Any:
        """``push``, then return what the dispatcher parsed (start() the harness first)."""
        await self.push(message, edited=edited)
        assert self.inbox is not None, "start() the harness first"
        return await self.inbox.next()

    async def press(self, user: raw.types.User, chat: Chat, message_id: int, data: bytes) -> Any:
        """``push_press``, then return the parsed ``CallbackQuery``."""
        await self.push_press(user, chat, message_id, data)
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
