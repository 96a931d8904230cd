"""A Telegram message's attachments, for ``adapter.inbound_from_message``.

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
from dataclasses import replace
from typing import Any

from pyrogram import Client, types

from pipeline.agent_request import AttachmentLimits, attachment_type
from pipeline.types import Attachment, AttachmentKind

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 60.0
_METADATA_ONLY: tuple[AttachmentKind, ...] = ("voice", "audio", "video", "video_note", "animation")


async def attachments_of(
    client: Client, message: types.Message, limits: AttachmentLimits, *, download: bool
) -> tuple[Attachment, ...]:
    """The message's attachment (a message holds one; ``albums`` merges an album's), with
    its data when it is fetched (see the module docstring; never with ``download=False``)."""
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
