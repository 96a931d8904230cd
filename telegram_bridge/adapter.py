"""Turn a parsed Pyrogram message into the pipeline's ``InboundMessage``.

``inbound_from_message`` is the one place that reads ``pyrogram.types.Message``. It decides
what counts as a mention, which photo size goes to vision and which files are downloaded up
front; the pipeline (``pipeline.agent_request.inspect_attachment``) decides what Claude is
then sent, so nothing here needs to know Claude's rules beyond the size limits.

Downloads: a photo's largest size within ``max_image_bytes``; documents that
``attachment_type`` reads as a PDF, a text file or an image, within their limit. Everything
else (voice, audio, video, video notes, animations, other files, anything over its limit)
is described by its metadata only. A failed download never raises: the attachment comes
without ``data`` and the router answers "couldn't download".
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pyrogram import Client, enums, types

from pipeline.agent_request import AttachmentLimits, attachment_type
from pipeline.types import (
    Attachment,
    AttachmentKind,
    Contact,
    InboundMessage,
    Location,
    Poll,
    ReplyReference,
)

logger = logging.getLogger(__name__)

TRANSPORT = "telegram"
DOWNLOAD_TIMEOUT_SECONDS = 60.0

# Pyrogram's chat types as aisystem's ChatType values. A forum is a supergroup with topics;
# a channel's direct-messages chat is many people writing to one channel, so it is treated
# like a group (answers need a mention) rather than a private chat, and so is a type this
# kurigram does not know yet.
_CHAT_TYPES = {
    enums.ChatType.PRIVATE: "private",
    enums.ChatType.BOT: "bot",
    enums.ChatType.GROUP: "group",
    enums.ChatType.SUPERGROUP: "supergroup",
    enums.ChatType.FORUM: "supergroup",
    enums.ChatType.CHANNEL: "channel",
    enums.ChatType.DIRECT: "supergroup",
}
_METADATA_ONLY: tuple[AttachmentKind, ...] = ("voice", "audio", "video", "video_note", "animation")


@dataclass(frozen=True)
class BridgeIdentity:
    """The Telegram account the bridge runs as. ``username`` is without the "@"."""

    user_id: int
    username: str = ""
    is_bot: bool = False

    @classmethod
    def from_user(cls, user: types.User) -> BridgeIdentity:
        return cls(user_id=user.id, username=user.username or "", is_bot=bool(user.is_bot))


async def inbound_from_message(
    client: Client,
    message: types.Message,
    *,
    me: BridgeIdentity,
    limits: AttachmentLimits,
    catch_up: bool = False,
) -> InboundMessage | None:
    """``message`` in transport-neutral form, or None (logged) when there is nothing to
    handle: service messages (joins, pins, title changes…), empty messages, and messages
    with neither text nor media. A message whose media kind is unknown to the bridge (a
    dice, a game, a story…) is returned with no content, so the router can say it cannot
    handle it. Never raises for a download failure."""
    chat = message.chat
    skip = _skip_reason(message)
    if skip or chat is None:
        _log_skip(message, skip or "no chat")
        return None
    own = _is_from(message, me)
    # The gate ignores our own messages: describe their files, never fetch them.
    attachments = await _attachments(client, message, limits, download=not own)
    text = _text_of(message)
    location, contact, poll = _location(message), _contact(message), _poll(message)
    if not (text or attachments or location or contact or poll or message.media):
        _log_skip(message, "nothing in it")
        return None
    sender_id, sender_username, sender_name = _sender(message)
    return InboundMessage(
        transport=TRANSPORT,
        chat_id=str(chat.id),
        chat_type=_CHAT_TYPES.get(chat.type, "supergroup") if chat.type else "supergroup",
        message_id=str(message.id),
        sender_id=sender_id,
        sent_at=_aware(message.date),
        text=text,
        sender_username=sender_username,
        sender_name=sender_name,
        chat_title=chat.title or _full_name(chat.first_name, chat.last_name),
        is_own=own,
        is_edited=message.edit_date is not None and not message.edit_hidden,
        is_forwarded=message.forward_origin is not None,
        is_catch_up=catch_up,
        mentions_assistant=_mentions(message, me),
        assistant_username=me.username,
        reply_to=_reply(message, me),
        attachments=attachments,
        location=location,
        contact=contact,
        poll=poll,
    )


def media_group_key(message: types.Message) -> str | None:
    """The album ``message`` belongs to ("<chat id>:<media group id>"), or None."""
    if message.media_group_id is None or message.chat is None:
        return None
    return f"{message.chat.id}:{message.media_group_id}"


# --- What the message is -------------------------------------------------------------------


def _skip_reason(message: types.Message) -> str:
    if message.empty:
        return "empty (deleted or inaccessible)"
    if message.service is not None:
        return f"service message ({message.service.name.lower()})"
    return ""


def _log_skip(message: types.Message, reason: str) -> None:
    chat_id = message.chat.id if message.chat else None
    logger.info("ignoring telegram message %s in chat %s: %s", message.id, chat_id, reason)


def _text_of(message: types.Message) -> str:
    return str(message.text or message.caption or "")


def _entities_of(message: types.Message) -> list[types.MessageEntity]:
    return list(message.entities or message.caption_entities or [])


def _sender(message: types.Message) -> tuple[str, str, str]:
    """(id, username, display name) of who sent ``message``: the user, else the chat it was
    sent as (channel posts, anonymous admins)."""
    user = message.from_user
    if user is not None:
        return str(user.id), user.username or "", _full_name(user.first_name, user.last_name)
    chat = message.sender_chat or message.chat
    if chat is None:
        return "", "", ""
    name = chat.title or _full_name(chat.first_name, chat.last_name)
    return str(chat.id), chat.username or "", name


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


def _aware(moment: datetime | None) -> datetime:
    """Pyrogram gives naive local times (``datetime.fromtimestamp``); make them UTC-aware."""
    if moment is None:
        return datetime.now(UTC)
    return moment.astimezone(UTC)


def _is_from(message: types.Message, me: BridgeIdentity) -> bool:
    if message.outgoing:
        return True
    return message.from_user is not None and message.from_user.id == me.user_id


def _utf16_slice(text: str, offset: int, length: int) -> str:
    """The text an entity covers: Telegram counts offsets in UTF-16 code units."""
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _mentions(message: types.Message, me: BridgeIdentity) -> bool:
    """True if Telegram flagged the message as mentioning us, an @mention entity names our
    username, a text mention points at our user, or the message replies to one of ours."""
    if message.mentioned:
        return True
    text = _text_of(message)
    if any(_names_us(item, text, me) for item in _entities_of(message)):
        return True
    reply = message.reply_to_message
    return reply is not None and not reply.empty and _is_from(reply, me)


def _names_us(item: types.MessageEntity, text: str, me: BridgeIdentity) -> bool:
    if item.type == enums.MessageEntityType.TEXT_MENTION:
        return item.user is not None and item.user.id == me.user_id
    if item.type != enums.MessageEntityType.MENTION or not me.username:
        return False
    return _utf16_slice(text, item.offset, item.length).lower() == f"@{me.username}".lower()


def _reply(message: types.Message, me: BridgeIdentity) -> ReplyReference | None:
    """The replied-to message as Pyrogram fetched it; just its id when it could not be
    fetched (deleted, or in a chat we cannot read)."""
    reply = message.reply_to_message
    if reply is None or reply.empty:
        if message.reply_to_message_id is None:
            return None
        return ReplyReference(transport_message_id=str(message.reply_to_message_id))
    return ReplyReference(
        transport_message_id=str(reply.id),
        text=_text_of(reply),
        sender_name=_sender(reply)[2],
        from_assistant=_is_from(reply, me),
    )


def _location(message: types.Message) -> Location | None:
    venue = message.venue
    point = venue.location if venue is not None else message.location
    if point is None or point.latitude is None or point.longitude is None:
        return None
    title = venue.title or "" if venue is not None else ""
    address = venue.address or "" if venue is not None else ""
    return Location(point.latitude, point.longitude, title, address)


def _contact(message: types.Message) -> Contact | None:
    found = message.contact
    if found is None:
        return None
    return Contact(found.phone_number or "", found.first_name or "", found.last_name or "")


def _poll(message: types.Message) -> Poll | None:
    found = message.poll
    if found is None:
        return None
    options = tuple(_plain(option.text) for option in found.options or [])
    return Poll(question=_plain(found.question), options=options)


def _plain(value: Any) -> str:
    """A FormattedText's text (kurigram), or the value itself as text."""
    return str(getattr(value, "text", value) or "")


# --- Attachments ------------------------------------------------------------------------------


async def _attachments(
    client: Client, message: types.Message, limits: AttachmentLimits, *, download: bool
) -> tuple[Attachment, ...]:
    if message.photo is not None:
        if not download:
            return (_described_photo(message.photo),)
        return (await _photo(client, message, message.photo, limits),)
    if message.document is not None:
        if not download:
            return (_described_document(message.document),)
        return (await _document(client, message, message.document, limits),)
    if message.sticker is not None:
        return (_sticker(message.sticker),)
    for kind in _METADATA_ONLY:
        media = getattr(message, kind, None)
        if media is not None:
            return (_metadata(kind, media),)
    return ()


async def _photo(
    client: Client, message: types.Message, photo: types.Photo, limits: AttachmentLimits
) -> Attachment:
    """The largest size (by pixels) whose file fits ``max_image_bytes``, downloaded. If none
    fits, the biggest size is described without data."""
    sizes: list[types.Photo | types.Thumbnail] = [photo, *(photo.thumbs or [])]
    fitting = [size for size in sizes if (size.file_size or 0) <= limits.max_image_bytes]
    if not fitting:
        _log_not_downloaded(message, "photo", "every size is over the image limit")
        return _described_photo(photo)
    best = max(fitting, key=lambda size: size.width * size.height)
    data = await _download(client, message, best.file_id, "photo")
    return replace(_described_photo(best), data=data)


def _described_photo(size: types.Photo | types.Thumbnail) -> Attachment:
    return Attachment(
        "photo", "image/jpeg", size=size.file_size, width=size.width, height=size.height
    )


async def _document(
    client: Client, message: types.Message, document: types.Document, limits: AttachmentLimits
) -> Attachment:
    described = _described_document(document)
    limit = _download_limit(described, limits)
    if limit is None:
        _log_not_downloaded(message, "document", "not a type Claude can read")
        return described
    if described.size is not None and described.size > limit:
        _log_not_downloaded(message, "document", "over its size limit")
        return described
    data = await _download(client, message, document.file_id, "document")
    return replace(described, data=data)


def _described_document(document: types.Document) -> Attachment:
    return Attachment(
        "document",
        mime_type=document.mime_type or "",
        file_name=document.file_name or "",
        size=document.file_size,
    )


def _download_limit(attachment: Attachment, limits: AttachmentLimits) -> int | None:
    """How large a document of this type may be to be fetched; None: never fetched."""
    kind = attachment_type(attachment)
    if kind == "pdf":
        return limits.max_pdf_bytes
    if kind == "text":
        return limits.max_text_file_bytes
    if kind == "image":
        return limits.max_image_bytes
    return None


def _sticker(sticker: types.Sticker) -> Attachment:
    return Attachment(
        "sticker",
        mime_type=sticker.mime_type or "",
        size=sticker.file_size,
        width=sticker.width,
        height=sticker.height,
        emoji=sticker.emoji or "",
    )


def _metadata(kind: AttachmentKind, media: Any) -> Attachment:
    """Voice, audio, video, video note or animation: described, never downloaded."""
    length = getattr(media, "length", None)  # video notes are square
    duration = getattr(media, "duration", None)
    return Attachment(
        kind,
        mime_type=getattr(media, "mime_type", None) or "",
        file_name=getattr(media, "file_name", None) or "",
        size=getattr(media, "file_size", None),
        width=getattr(media, "width", None) or length,
        height=getattr(media, "height", None) or length,
        duration_seconds=float(duration) if duration is not None else None,
    )


async def _download(
    client: Client, message: types.Message, file_id: str, what: str
) -> bytes | None:
    """The file's bytes, or None (logged) if fetching it failed or timed out."""
    try:
        result = await asyncio.wait_for(
            client.download_media(file_id, in_memory=True), DOWNLOAD_TIMEOUT_SECONDS
        )
    except Exception as error:
        _log_not_downloaded(message, what, f"download failed ({type(error).__name__})")
        return None
    if isinstance(result, io.BytesIO):
        return result.getvalue()
    _log_not_downloaded(message, what, "download returned no data")
    return None


def _log_not_downloaded(message: types.Message, what: str, why: str) -> None:
    chat_id = message.chat.id if message.chat else None
    logger.info(
        "telegram %s of message %s in chat %s not downloaded: %s", what, message.id, chat_id, why
    )
