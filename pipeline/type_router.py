"""Step 3: classify a message and plan what to do with it.

``classify`` names the content; ``TypeRouter.plan`` decides the handler (agent, command,
unsupported, ignore), the model and limits, whether to stream, whether to run it as a
background job, and its priority. Pure: no database, no transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from pipeline.agent_request import AttachmentLimits, UnsupportedReason, inspect_attachment
from pipeline.commands import ParsedCommand, parse_command
from pipeline.security_gate import is_blank
from pipeline.types import (
    ContentKind,
    InboundMessage,
    MessageContext,
    MessageType,
    ProcessingPlan,
)

GROUP_CHAT_TYPES = frozenset({"group", "supergroup", "channel"})

PRIORITY_COMMAND = 0
PRIORITY_INTERACTIVE = 5
PRIORITY_EDITED = 6  # edited and forwarded messages
PRIORITY_CATCH_UP = 8

# A PDF at least this large goes to a background job; during catch-up, any attachment does.
LARGE_MEDIA_BYTES = 1024 * 1024

_ATTACHMENT_KINDS: Mapping[str, ContentKind] = MappingProxyType(
    {
        "photo": "photo",
        "document": "document",
        "voice": "voice",
        "audio": "voice",
        "video": "video",
        "video_note": "video",
        "animation": "video",
        "sticker": "sticker",
    }
)


def classify(message: InboundMessage) -> tuple[MessageType, ContentKind]:
    """Return (message_type, kind). ``kind`` is the content: the first attachment's kind
    (audio counts as voice, video notes and animations as video), else location, contact,
    poll, a command, text; "unknown" when there is nothing (blank text counts as nothing).
    A forwarded "/command" is text: it is someone else's words, not an order to us.
    ``message_type`` is "edited" if the message was edited, else "forwarded" if it was
    forwarded, else the kind.
    """
    kind = _content_kind(message)
    if message.is_edited:
        return "edited", kind
    if message.is_forwarded:
        return "forwarded", kind
    return kind, kind


def _content_kind(message: InboundMessage) -> ContentKind:
    if message.attachments:
        return _ATTACHMENT_KINDS[message.attachments[0].kind]
    if message.location is not None:
        return "location"
    if message.contact is not None:
        return "contact"
    if message.poll is not None:
        return "poll"
    if is_blank(message.text):  # zero-width or BOM-only text is as blank as spaces
        return "unknown"
    if not message.is_forwarded and parse_command(message.text) is not None:
        return "command"
    return "text"


@dataclass(frozen=True)
class TypeRouter:
    """Plans messages against ``limits`` (the attachment sizes Claude is sent)."""

    limits: AttachmentLimits = field(default_factory=AttachmentLimits)

    def plan(self, message: InboundMessage, context: MessageContext) -> ProcessingPlan:
        """See ``route``."""
        return route(message, context, limits=self.limits)


def route(
    message: InboundMessage,
    context: MessageContext,
    *,
    limits: AttachmentLimits | None = None,
) -> ProcessingPlan:
    """The plan for ``message``.

    * A command naming another bot (``/help@OtherBot``) is ignored, in every chat.
    * In groups and channels, unless the chat's reply mode is "all", only messages that
      mention the assistant, reply to it, or are commands are answered; the rest are
      ignored with reason "not_addressed". An unknown reply mode counts as "mention".
    * Commands go to the command handler (unknown names too: it answers them).
    * Text, stickers, locations, contacts, polls, and photos/PDFs/text files Claude can
      read go to the agent. Voice, video, unreadable attachments and empty messages are
      "unsupported" with a reason for ``unsupported_reply``.
    * Priority: commands 0, interactive 5, edited/forwarded 6, catch-up 8 (commands stay 0:
      they are cheap and need no model).
    * ``background`` is True for ``/bg <task>`` (the agent answers the task), for a PDF of
      1 MB or more (reading it takes Claude long enough that the sender is better told
      "working on it" than left watching), and for catch-up messages with a PDF or any
      attachment of 1 MB or more (after downtime they would hold up the small messages
      queued behind them). ``/bg`` alone goes to the command handler, which explains it.
    """
    limits = limits or AttachmentLimits()
    message_type, kind = classify(message)
    command = parse_command(message.text, message.assistant_username) if kind == "command" else None
    base = ProcessingPlan(
        handler="ignore",
        message_type=message_type,
        kind=kind,
        model=context.workspace.model,
        max_tokens=context.workspace.max_tokens,
        stream=False,
        priority=_priority(message, kind),
    )
    if not _is_addressed(message, context, command):
        return replace(base, reason="not_addressed")
    if command is not None and command.name == "bg" and command.args:
        return replace(
            base,
            handler="agent",
            background=True,
            priority=PRIORITY_INTERACTIVE,
            command=command.name,
            command_args=command.args,
        )
    if command is not None:
        return replace(base, handler="command", command=command.name, command_args=command.args)
    reason = _unsupported_reason(message, kind, limits)
    if reason is not None:
        return replace(base, handler="unsupported", reason=reason)
    return replace(
        base, handler="agent", stream=True, background=_runs_in_background(message, limits)
    )


def _is_addressed(
    message: InboundMessage, context: MessageContext, command: ParsedCommand | None
) -> bool:
    """Whether the message is for us, one condition per line."""
    if command is not None and command.addressed_to_other:
        return False
    if context.chat_type not in GROUP_CHAT_TYPES or context.reply_mode == "all":
        return True
    if message.mentions_assistant:
        return True
    if message.reply_to is not None and message.reply_to.from_assistant:
        return True
    return command is not None


def _unsupported_reason(
    message: InboundMessage, kind: ContentKind, limits: AttachmentLimits
) -> UnsupportedReason | None:
    """None if the agent can answer; else why not. A message with several attachments is
    answered when at least one is usable (the others are named in the request's notes)."""
    if kind == "unknown":
        return "unknown"
    if not message.attachments:
        return None
    checks = [inspect_attachment(attachment, limits) for attachment in message.attachments]
    if any(check.reason is None for check in checks):
        return None
    return checks[0].reason


def _runs_in_background(message: InboundMessage, limits: AttachmentLimits) -> bool:
    for attachment in message.attachments:
        size = len(attachment.data) if attachment.data is not None else attachment.size or 0
        pdf = inspect_attachment(attachment, limits).type == "pdf"
        if pdf and size >= LARGE_MEDIA_BYTES:
            return True
        if message.is_catch_up and (pdf or size >= LARGE_MEDIA_BYTES):
            return True
    return False


def _priority(message: InboundMessage, kind: ContentKind) -> int:
    if kind == "command":
        return PRIORITY_COMMAND
    if message.is_catch_up:
        return PRIORITY_CATCH_UP
    if message.is_edited or message.is_forwarded:
        return PRIORITY_EDITED
    return PRIORITY_INTERACTIVE


_UNSUPPORTED_REPLIES: Mapping[str, str] = MappingProxyType(
    {
        "voice": "Voice messages aren't supported yet — please send your question as text.",
        "video": "Videos aren't supported yet — please describe what you need in text, "
        "or send a photo.",
        "image": "I couldn't use that image. I can look at JPEG, PNG, GIF and WebP images "
        "that aren't too large — please try another one.",
        "document_type": "I can't read that kind of file. I can read PDFs, text and code "
        "files, and JPEG, PNG, GIF or WebP images.",
        "document_too_large": "That file is too large for me to read. Please send a smaller "
        "one, or paste the part you need as text.",
        "download_failed": "I couldn't download that file — please try sending it again.",
        "unknown": "I can't handle this kind of message yet. Please send text, a photo or "
        "a document.",
    }
)


def unsupported_reply(reason: str) -> str:
    """The short answer for an "unsupported" plan's ``reason`` (unknown reasons get the
    generic one)."""
    return _UNSUPPORTED_REPLIES.get(reason, _UNSUPPORTED_REPLIES["unknown"])
