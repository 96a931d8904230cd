"""Turn a parsed Pyrogram message into the pipeline's ``InboundMessage``.

``inbound_from_message`` is the one place that reads ``pyrogram.types.Message`` (with
``media`` for its attachments). It decides what counts as a mention, which photo size goes
to vision and which files are downloaded up front; the pipeline
(``pipeline.agent_request.inspect_attachment``) decides what Claude is then sent, so nothing
here needs to know Claude's rules beyond the size limits.

Downloads are ``media.attachments_of``'s: a photo's largest size within the image limit and
the documents Claude can read; everything else is described by its metadata only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyrogram import Client, enums, types
from pyrogram.errors.rpc_error import RPCError

from pipeline.agent_request import AttachmentLimits
from pipeline.text_safety import inbound_safe
from pipeline.types import Contact, InboundMessage, Location, Poll, ReplyReference
from telegram_bridge.media import attachments_of

logger = logging.getLogger(__name__)

TRANSPORT = "telegram"
EDIT_KEY_MARK = ":edit:"

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
    download: bool = True,
) -> InboundMessage | None:
    """``message`` in transport-neutral form, or None (logged) when there is nothing to
    handle: service messages (joins, pins, title changes…), empty messages, and messages
    with neither text nor media. A message whose media kind is unknown to the bridge (a
    dice, a game, a story…) is returned with no content, so the router can say it cannot
    handle it. An edited message (``edit_date`` set, not a hidden edit) gets its edit's key
    and time. ``download=False`` describes files without fetching them (for a message only
    recorded, not answered now). Never raises for a download failure. Its strings hold no
    lone surrogate or NUL (``pipeline.text_safety``)."""
    chat = message.chat
    skip = _skip_reason(message)
    if skip or chat is None:
        _log_skip(message, skip or "no chat")
        return None
    own = _is_from(message, me)
    # The gate ignores our own messages: describe their files, never fetch them.
    attachments = await attachments_of(client, message, limits, download=download and not own)
    text = _text_of(message)
    location, contact, poll = _location(message), _contact(message), _poll(message)
    if not (text or attachments or location or contact or poll or message.media):
        _log_skip(message, "nothing in it")
        return None
    sender_id, sender_username, sender_name = _sender(message)
    edited = message.edit_date is not None and not message.edit_hidden
    replied = await _replied_to(client, message) if not own else message.reply_to_message
    inbound = InboundMessage(
        transport=TRANSPORT,
        chat_id=str(chat.id),
        chat_type=_CHAT_TYPES.get(chat.type, "supergroup") if chat.type else "supergroup",
        message_id=message_key(message.id, message.edit_date if edited else None),
        sender_id=sender_id,
        sent_at=_aware(message.edit_date if edited else message.date),
        text=text,
        sender_username=sender_username,
        sender_name=sender_name,
        chat_title=chat.title or _full_name(chat.first_name, chat.last_name),
        is_own=own,
        is_edited=edited,
        is_forwarded=message.forward_origin is not None,
        is_catch_up=catch_up,
        mentions_assistant=_mentions(message, replied, me),
        assistant_username=me.username,
        reply_to=_reply(message, replied, me),
        attachments=attachments,
        location=location,
        contact=contact,
        poll=poll,
    )
    # Half a surrogate pair (or NUL) in any of its strings could not be stored.
    return inbound_safe(inbound)


def message_key(message_id: int, edit_date: datetime | None = None) -> str:
    """The pipeline's id for Telegram message ``message_id``, or for its edit made at
    ``edit_date`` (see the module docstring)."""
    if edit_date is None:
        return str(message_id)
    return f"{message_id}{EDIT_KEY_MARK}{int(edit_date.timestamp())}"


def telegram_message_id(key: str) -> int:
    """The Telegram message id in a ``message_key`` (ValueError if it holds none)."""
    return int(key.partition(EDIT_KEY_MARK)[0])


def is_edit_key(key: str) -> bool:
    return EDIT_KEY_MARK in key


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


def _mentions(message: types.Message, replied: types.Message | None, me: BridgeIdentity) -> bool:
    """True if Telegram flagged the message as mentioning us, an @mention entity names our
    username, a text mention points at our user, or the message replies to one of ours."""
    if message.mentioned:
        return True
    text = _text_of(message)
    if any(_names_us(item, text, me) for item in _entities_of(message)):
        return True
    return replied is not None and not replied.empty and _is_from(replied, me)


def _names_us(item: types.MessageEntity, text: str, me: BridgeIdentity) -> bool:
    if item.type == enums.MessageEntityType.TEXT_MENTION:
        return item.user is not None and item.user.id == me.user_id
    if item.type != enums.MessageEntityType.MENTION or not me.username:
        return False
    return _utf16_slice(text, item.offset, item.length).lower() == f"@{me.username}".lower()


async def _replied_to(client: Client, message: types.Message) -> types.Message | None:
    """The message ``message`` replies to: from Pyrogram's message cache, else fetched (one
    ``GetMessages``) when the client does not fetch replies itself. None if there is none or
    it cannot be fetched (logged)."""
    reply = message.reply_to_message
    if reply is not None or message.reply_to_message_id is None or client.fetch_replies:
        return reply
    chat_id = message.chat.id if message.chat else None
    if chat_id is None:
        return None
    try:
        found = await client.get_messages(chat_id, message.id, reply=True, replies=0)
    except (RPCError, ValueError, KeyError) as error:
        logger.info("replied-to message of %s in chat %s: %s", message.id, chat_id, error)
        return None
    return found if isinstance(found, types.Message) else None


def _reply(
    message: types.Message, reply: types.Message | None, me: BridgeIdentity
) -> ReplyReference | None:
    """The replied-to message as it was fetched; just its id when it could not be
    fetched (deleted, or in a chat we cannot read)."""
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
