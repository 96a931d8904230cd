"""Build the Claude request for one message: system prompt, history, attachments, text.

Also the one place that decides which attachments Claude can see (``inspect_attachment``):
the type router asks it whether a message is worth sending, and the request builder uses
the same verdict to encode it, so the two never disagree. Attachment types are checked by
their magic bytes, never by the declared MIME type or file name alone.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from pipeline.context_builder import compose_user_text, format_size, one_line
from pipeline.types import (
    Attachment,
    ChatTurn,
    ClaudeRequest,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    InboundMessage,
    MessageContext,
    ProcessingPlan,
    TextBlock,
    ToolSpec,
    WorkspaceInfo,
)

UnsupportedReason = Literal[
    "voice", "video", "image", "document_type", "document_too_large", "download_failed", "unknown"
]
AttachmentType = Literal["image", "pdf", "text", "sticker", "voice", "video", "other"]


@dataclass(frozen=True)
class AttachmentLimits:
    """Largest attachments Claude is sent, in bytes (defaults match settings.PIPELINE's)."""

    max_image_bytes: int = 5 * 1024 * 1024
    max_pdf_bytes: int = 20 * 1024 * 1024
    max_text_file_bytes: int = 200 * 1024

    @classmethod
    def from_settings(cls, pipeline: Mapping[str, int]) -> AttachmentLimits:
        """From ``settings.PIPELINE`` (keys MAX_IMAGE_BYTES, MAX_PDF_BYTES, MAX_TEXT_FILE_BYTES)."""
        return cls(
            max_image_bytes=pipeline["MAX_IMAGE_BYTES"],
            max_pdf_bytes=pipeline["MAX_PDF_BYTES"],
            max_text_file_bytes=pipeline["MAX_TEXT_FILE_BYTES"],
        )


@dataclass(frozen=True)
class AttachmentCheck:
    """The verdict on one attachment. ``reason`` is None when Claude can be sent it; else
    ``note`` is the user-facing sentence saying why it was left out. ``media_type`` is the
    sniffed image type; ``text`` the decoded content of a text file."""

    type: AttachmentType
    reason: UnsupportedReason | None = None
    note: str = ""
    media_type: str = ""
    text: str = ""


@dataclass(frozen=True)
class BuiltRequest:
    """The request, plus user-visible notes about attachments that were left out."""

    request: ClaudeRequest
    notes: tuple[str, ...] = ()


# --- What an attachment is ---------------------------------------------------------------

_IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".heif", ".bmp", ".tiff"}
_TEXT_MIME_TYPES = {
    "application/json", "application/xml", "application/yaml", "application/x-yaml",
    "application/toml", "application/x-toml", "application/javascript", "application/sql",
    "application/x-sh", "application/x-python", "application/csv", "application/x-ndjson",
}  # fmt: skip
_TEXT_EXTENSIONS = {
    ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv", ".json", ".jsonl", ".xml", ".yaml",
    ".yml", ".toml", ".ini", ".cfg", ".conf", ".log", ".sql", ".sh", ".bash", ".zsh", ".py",
    ".js", ".mjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".go", ".rs", ".c", ".h", ".cpp",
    ".hpp", ".cc", ".cs", ".rb", ".php", ".swift", ".lua", ".r", ".pl", ".html", ".htm",
    ".css", ".scss", ".vue", ".svelte", ".tex", ".diff", ".patch", ".srt", ".vtt",
}  # fmt: skip
_TEXT_FILE_NAMES = {"dockerfile", "makefile", "readme", "license", "procfile"}


def sniff_image(data: bytes) -> str | None:
    """The image's media type from its magic bytes (JPEG, PNG, GIF, WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_pdf(data: bytes) -> bool:
    """True if ``data`` carries a PDF header (readers allow junk in the first 1 KB)."""
    return b"%PDF-" in data[:1024]


def decode_text(data: bytes) -> str | None:
    """A text file's content, or None when it looks binary.

    UTF-16 with a byte-order mark is decoded as such; otherwise NUL bytes mean binary.
    Then UTF-8 (a BOM dropped); failing that Windows-1252, the likeliest encoding of a
    non-UTF-8 text file (spreadsheet CSV exports): unlike Latin-1 it maps 0x80-0x9F to the
    quotes and dashes the author saw rather than to control characters.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def attachment_type(attachment: Attachment) -> AttachmentType:
    """What ``attachment`` is, from its kind, declared type, file name and first bytes."""
    if attachment.kind == "photo":
        return "image"
    if attachment.kind == "sticker":
        return "sticker"
    if attachment.kind in ("voice", "audio"):
        return "voice"
    if attachment.kind in ("video", "video_note", "animation"):
        return "video"
    mime = attachment.mime_type.lower().split(";")[0].strip()
    path = PurePosixPath(attachment.file_name.lower())
    data = attachment.data or b""
    if mime.startswith("image/") or path.suffix in _IMAGE_EXTENSIONS or sniff_image(data):
        return "image"
    if mime == "application/pdf" or path.suffix == ".pdf" or is_pdf(data):
        return "pdf"
    if (
        mime.startswith("text/")
        or mime in _TEXT_MIME_TYPES
        or path.suffix in _TEXT_EXTENSIONS
        or path.name in _TEXT_FILE_NAMES
    ):
        return "text"
    return "other"


def inspect_attachment(attachment: Attachment, limits: AttachmentLimits) -> AttachmentCheck:
    """Whether Claude can be sent ``attachment``; see ``AttachmentCheck``. Stickers pass
    (their emoji goes in as text); voice, video and unknown files never do."""
    kind = attachment_type(attachment)
    subject = _subject(attachment, kind)  # "The file report.docx"
    if kind == "sticker":
        return AttachmentCheck(kind)
    if kind == "voice":
        return AttachmentCheck(kind, "voice", "I can't listen to voice messages or audio yet.")
    if kind == "video":
        return AttachmentCheck(kind, "video", "I can't watch videos yet.")
    if kind == "other":
        return AttachmentCheck(kind, "document_type", f"{subject} isn't a type I can read.")
    if kind == "image":
        return _inspect_image(attachment, subject, limits.max_image_bytes)
    if kind == "pdf":
        return _inspect_pdf(attachment, subject, limits.max_pdf_bytes)
    return _inspect_text(attachment, subject, limits.max_text_file_bytes)


def _inspect_image(attachment: Attachment, subject: str, limit: int) -> AttachmentCheck:
    data = attachment.data
    if data is None and attachment.size is not None and attachment.size > limit:
        note = f"{subject} is larger than the {format_size(limit)} I can take."
        return AttachmentCheck("image", "image", note)
    if data is None:
        return AttachmentCheck("image", "image", f"I couldn't download {_lower_first(subject)}.")
    media_type = sniff_image(data)
    if media_type is None:
        note = f"{subject} isn't a JPEG, PNG, GIF or WebP image, so I couldn't look at it."
        return AttachmentCheck("image", "image", note)
    if len(data) > limit:
        note = f"{subject} is larger than the {format_size(limit)} I can take."
        return AttachmentCheck("image", "image", note)
    return AttachmentCheck("image", media_type=media_type)


def _inspect_pdf(attachment: Attachment, subject: str, limit: int) -> AttachmentCheck:
    size = len(attachment.data) if attachment.data is not None else attachment.size
    if size is not None and size > limit:
        note = f"{subject} is larger than the {format_size(limit)} I can read."
        return AttachmentCheck("pdf", "document_too_large", note)
    if attachment.data is None:
        note = f"I couldn't download {_lower_first(subject)}."
        return AttachmentCheck("pdf", "download_failed", note)
    if not is_pdf(attachment.data):
        return AttachmentCheck("pdf", "document_type", f"{subject} isn't a readable PDF.")
    return AttachmentCheck("pdf")


def _inspect_text(attachment: Attachment, subject: str, limit: int) -> AttachmentCheck:
    size = len(attachment.data) if attachment.data is not None else attachment.size
    if size is not None and size > limit:
        note = f"{subject} is larger than the {format_size(limit)} of text I can read."
        return AttachmentCheck("text", "document_too_large", note)
    if attachment.data is None:
        note = f"I couldn't download {_lower_first(subject)}."
        return AttachmentCheck("text", "download_failed", note)
    text = decode_text(attachment.data)
    if text is None:
        note = f"{subject} looks like a binary file, not text I can read."
        return AttachmentCheck("text", "document_type", note)
    return AttachmentCheck("text", text=text)


def _subject(attachment: Attachment, kind: AttachmentType) -> str:
    """How a note names the attachment: "The file report.docx", "The photo"."""
    name = one_line(attachment.file_name, 80)
    noun = "image" if kind == "image" and attachment.kind == "document" else attachment.kind
    noun = "file" if noun == "document" else noun.replace("_", " ")
    return f"The {noun} {name}" if name else f"The {noun}"


def _lower_first(subject: str) -> str:
    return subject[:1].lower() + subject[1:]


# --- The request -------------------------------------------------------------------------


def build_request(
    message: InboundMessage,
    context: MessageContext,
    plan: ProcessingPlan,
    *,
    limits: AttachmentLimits,
    tools: Sequence[ToolSpec] = (),
) -> BuiltRequest:
    """The Claude request for ``message``: the workspace's system prompt, the trimmed
    history, then one user turn with the attachments Claude can see (images, PDFs, text
    files inlined) and a never-empty text block. Attachments left out are named in
    ``notes`` for the user and mentioned to Claude. The turns alternate and start with
    "user". Model and max_tokens come from ``plan``, falling back to the workspace.
    """
    blocks: list[ContentBlock] = []
    notes: list[str] = []
    for attachment in message.attachments:
        check = inspect_attachment(attachment, limits)
        if check.reason is not None:
            notes.append(check.note)
        elif block := _attachment_block(attachment, check):
            blocks.append(block)
    text = _user_text(message, context, notes)
    history = [
        ChatTurn(turn.role, (TextBlock(turn.text),))
        for turn in context.history
        if turn.text.strip()  # Claude rejects empty text blocks
    ]
    workspace = context.workspace
    request = ClaudeRequest(
        model=plan.model or workspace.model,
        max_tokens=plan.max_tokens if plan.max_tokens > 0 else workspace.max_tokens,
        messages=alternate_turns([*history, ChatTurn("user", (*blocks, TextBlock(text)))]),
        system=system_prompt(
            workspace,
            sender_name=context.sender_name or message.sender_name,
            chat_type=context.chat_type,
            chat_title=message.chat_title,
        ),
        tools=tuple(tools),
    )
    return BuiltRequest(request=request, notes=tuple(notes))


def _attachment_block(attachment: Attachment, check: AttachmentCheck) -> ContentBlock | None:
    data = attachment.data or b""
    if check.type == "image":
        return ImageBlock(media_type=check.media_type, data_base64=_b64(data))
    if check.type == "pdf":
        return DocumentBlock(data_base64=_b64(data), title=one_line(attachment.file_name))
    if check.type == "text":
        return TextBlock(_fenced(one_line(attachment.file_name) or "(unnamed)", check.text))
    return None  # a sticker: its emoji is in the text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _fenced(name: str, text: str) -> str:
    """The file as a fenced block, the fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"File {name}:\n{fence}\n{text.rstrip()}\n{fence}"


def _user_text(message: InboundMessage, context: MessageContext, notes: Sequence[str]) -> str:
    """The text block of the current turn; never empty (Claude rejects empty text)."""
    core = context.text
    if not core.strip() and any(a.kind != "sticker" for a in message.attachments):
        core = _placeholder(message)
    composed = compose_user_text(core, context.media_description, context.reply_context)
    lines: list[str] = []
    if message.is_edited:
        lines.append("(The user edited an earlier message; this is the new version.)")
    elif message.is_forwarded:
        lines.append("(The user forwarded this message.)")
    lines.append(composed or _placeholder(message))
    lines += [f'(Left out of this message; the user was told: "{note}")' for note in notes]
    return "\n\n".join(lines)


def _placeholder(message: InboundMessage) -> str:
    kinds = {attachment_type(a) for a in message.attachments}
    if "image" in kinds:
        return "(The user sent a photo without a caption.)"
    if kinds - {"sticker"}:
        return "(The user sent a file without a message.)"
    if message.mentions_assistant:
        return "(The user mentioned you without writing anything else.)"
    return "(The user sent a message without text.)"


def alternate_turns(turns: Sequence[ChatTurn]) -> tuple[ChatTurn, ...]:
    """``turns`` as Claude accepts them: leading assistant turns and empty turns dropped,
    consecutive turns of one role merged into one (their content blocks concatenated)."""
    merged: list[ChatTurn] = []
    for turn in turns:
        if not turn.content or (not merged and turn.role == "assistant"):
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = ChatTurn(turn.role, (*merged[-1].content, *turn.content))
        else:
            merged.append(turn)
    return tuple(merged)


# --- The system prompt -------------------------------------------------------------------

_CHAT_PLACES = {
    "private": "a private Telegram chat",
    "bot": "a private Telegram chat",
    "group": "a group chat",
    "supergroup": "a group chat",
    "channel": "a channel",
    "web": "the browser chat",
    "api": "a request through the API",
}


def system_prompt(
    workspace: WorkspaceInfo, *, sender_name: str = "", chat_type: str = "", chat_title: str = ""
) -> str:
    """The workspace's system prompt, plus one line saying where the message came from and
    who sent it. The model can then address the person by name and knows when others read
    along (groups). The sender's name and the chat's title are chosen by users, so they are
    quoted, flattened to one line and cut short: they cannot pose as instructions."""
    place = _CHAT_PLACES.get(chat_type, "a chat")
    if chat_type in ("group", "supergroup", "channel") and chat_title.strip():
        place += f' called "{one_line(chat_title, 64)}"'
    line = f"This conversation is in {place}."
    if sender_name.strip():
        line += f' The message is from "{one_line(sender_name, 64)}".'
    if chat_type in ("group", "supergroup", "channel"):
        line += " Others in the chat can read your answer."
    base = workspace.system_prompt.strip()
    return f"{base}\n\n{line}" if base else line
