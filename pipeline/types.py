"""The values passed between the pipeline's steps: frozen dataclasses, no dict bags.

A transport (the Telegram bridge, the browser chat, the REST API) turns its input into an
``InboundMessage``; each step returns one value; ``ProcessingResult`` says what happened.
Nothing here imports Django models or a transport library, so every step can be tested
with plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, Protocol, get_args

# --- What arrives ------------------------------------------------------------------------

AttachmentKind = Literal[
    "photo", "document", "voice", "audio", "video", "video_note", "animation", "sticker"
]


@dataclass(frozen=True)
class Attachment:
    """A media item. ``data`` is the downloaded content, or None if it was not (yet) fetched:
    a transport downloads what the router could use (photos, PDFs, text files) up front."""

    kind: AttachmentKind
    mime_type: str = ""
    file_name: str = ""
    size: int | None = None
    data: bytes | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    emoji: str = ""  # stickers


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    title: str = ""  # a venue's name
    address: str = ""


@dataclass(frozen=True)
class Contact:
    phone_number: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class Poll:
    question: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplyReference:
    """The message this one answers, as the transport saw it."""

    transport_message_id: str
    text: str = ""
    sender_name: str = ""
    from_assistant: bool = False


@dataclass(frozen=True)
class InboundMessage:
    """One incoming message, in transport-neutral form.

    ``chat_id``/``sender_id``/``message_id`` are the transport's own ids (strings).
    ``mentions_assistant`` is the transport's judgement (entity or @username); the context
    builder strips ``assistant_username`` mentions from the text. ``is_catch_up`` marks
    messages fetched after downtime, which the staleness check lets through.
    """

    transport: str
    chat_id: str
    chat_type: str
    message_id: str
    sender_id: str
    sent_at: datetime
    text: str = ""
    sender_username: str = ""
    sender_name: str = ""
    chat_title: str = ""
    is_own: bool = False
    is_edited: bool = False
    is_forwarded: bool = False
    is_catch_up: bool = False
    mentions_assistant: bool = False
    assistant_username: str = ""
    reply_to: ReplyReference | None = None
    attachments: tuple[Attachment, ...] = ()
    location: Location | None = None
    contact: Contact | None = None
    poll: Poll | None = None
    api_token_id: int | None = None  # REST API: the token the request was made with
    user_id: int | None = None  # browser chat: the signed-in Django user


# --- Step 1: the security gate -----------------------------------------------------------

DecisionReason = Literal[
    "allowed_by_rule",
    "own_message",
    "duplicate",
    "stale",
    "blocked",
    "denied_by_rule",
    "no_matching_rule",
    "rate_limited",
    "chat_rate_limited",
    "token_budget_exceeded",
    "cost_budget_exceeded",
    "input_too_long",
]


@dataclass(frozen=True)
class AccessDecision:
    """``allowed`` is the answer. ``reason`` is for audit. ``notice`` is the short,
    non-revealing reply the sender gets ("" means silence). ``ignored`` decisions (own,
    duplicate, stale) are not rejections: nothing is recorded against the sender."""

    allowed: bool
    reason: DecisionReason
    rule_id: int | None = None
    notice: str = ""
    retry_after_seconds: int | None = None
    # A rate limit's: when the exceeded window ends (one notice per such window).
    blocked_until: datetime | None = None

    @property
    def ignored(self) -> bool:
        return self.reason in ("own_message", "duplicate", "stale")


# --- Step 2: the context builder ---------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceInfo:
    id: int
    slug: str
    name: str
    system_prompt: str
    model: str
    max_tokens: int


@dataclass(frozen=True)
class HistoryTurn:
    """One earlier message of the conversation, as plain text."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class MessageContext:
    """Everything the later steps need to know about who, where and what came before."""

    message_pk: int  # the stored inbound Message
    identity_id: int
    chat_pk: int
    conversation_id: int
    workspace: WorkspaceInfo
    text: str  # the message text, mention stripped
    identity_role: str = "guest"
    sender_name: str = ""
    chat_type: str = "private"
    reply_mode: str = "mention"
    status_reactions: bool = True
    history: tuple[HistoryTurn, ...] = ()
    history_dropped: int = 0  # earlier turns left out to respect the budget
    reply_context: str = ""
    media_description: str = ""


# --- Step 3: the type router -------------------------------------------------------------

# What a message holds, as stored: aisystem's ``MessageKind`` has the same values in the same
# order (a test pins them; the core cannot import this module, so it keeps its own copy).
ContentKind = Literal[
    "text",
    "command",
    "photo",
    "document",
    "voice",
    "video",
    "sticker",
    "location",
    "contact",
    "poll",
    "unknown",
]
CONTENT_KINDS: tuple[ContentKind, ...] = get_args(ContentKind)
# The classification: the content kind, unless the message was edited or forwarded.
MessageType = ContentKind | Literal["edited", "forwarded"]
Handler = Literal["agent", "command", "unsupported", "ignore"]


@dataclass(frozen=True)
class ProcessingPlan:
    """What to do with the message. ``kind`` is its content kind (as stored); ``message_type``
    is the classification (``edited`` and ``forwarded`` win over the content kind)."""

    handler: Handler
    message_type: MessageType
    kind: ContentKind
    model: str = ""
    max_tokens: int = 1024
    stream: bool = True
    background: bool = False
    priority: int = 5  # 0 is most urgent
    command: str = ""
    command_args: str = ""
    reason: str = ""  # why "ignore" or "unsupported"


# --- Step 4: the agent orchestrator ------------------------------------------------------


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ImageBlock:
    media_type: str
    data_base64: str


@dataclass(frozen=True)
class DocumentBlock:
    """A PDF, sent as a document block."""

    data_base64: str
    title: str = ""


@dataclass(frozen=True)
class ToolUseBlock:
    id: str
    name: str
    input: Mapping[str, object]


@dataclass(frozen=True)
class ToolResultBlock:
    tool_use_id: str
    content: str
    is_error: bool = False


ContentBlock = TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock


@dataclass(frozen=True)
class ChatTurn:
    role: Literal["user", "assistant"]
    content: tuple[ContentBlock, ...]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: Mapping[str, object]


@dataclass(frozen=True)
class ClaudeRequest:
    model: str
    max_tokens: int
    messages: tuple[ChatTurn, ...]
    system: str = ""
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class ClaudeReply:
    """A finished Messages call: the text, any tool calls, and what it cost."""

    content: tuple[TextBlock | ToolUseBlock, ...]
    stop_reason: str
    model: str
    input_tokens: int
    output_tokens: int
    request_id: str = ""
    credential_label: str = ""

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content if isinstance(block, TextBlock))

    @property
    def tool_uses(self) -> tuple[ToolUseBlock, ...]:
        return tuple(block for block in self.content if isinstance(block, ToolUseBlock))


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of an answer. ``pending_action_id`` is set when the tool proposed a
    change that waits for the person (``confirm_prompt`` is the question they are asked)."""

    name: str
    ok: bool
    latency_ms: float
    pending_action_id: int | None = None
    confirm_prompt: str = ""


AgentOutcome = Literal["ok", "cancelled", "unavailable", "failed"]


@dataclass(frozen=True)
class AgentResponse:
    """The agent's answer. ``unavailable`` means Claude could not answer now (breaker open,
    no usable key, overloaded or failing after every attempt): the message is deferred.
    ``failed`` carries a user-safe ``error``.
    ``pending_action_id`` is the change this answer proposed, waiting for the person's
    /confirm or /cancel (its question ends ``text``)."""

    outcome: AgentOutcome
    text: str = ""
    model: str = ""
    stop_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    tool_calls: tuple[ToolCallRecord, ...] = ()
    first_text_ms: float | None = None
    error: str = ""
    pending_action_id: int | None = None


# --- Step 5: the response manager --------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    transport_message_ids: tuple[str, ...] = ()
    parts: int = 0
    plain_fallback: bool = False  # the transport refused the formatting; sent as plain text
    error: str = ""
    # The transport asked to try again later (Telegram's FloodWait): the reply is rescheduled.
    retry_after_seconds: float | None = None


# --- The outcome -------------------------------------------------------------------------

ProcessingStatus = Literal["answered", "rejected", "deferred", "failed", "ignored"]


@dataclass(frozen=True)
class ProcessingResult:
    """What happened to a message. ``reply`` is what the sender was sent (may be empty);
    ``timings_ms`` has one entry per step that ran, plus ``total``.

    ``pending_action_id`` is set when the reply asks the person to confirm a change: a
    transport may then offer Confirm/Cancel buttons under ``reply_message_ids[-1]`` (the
    transport's ids of the messages the reply was sent as) that call
    ``pipeline.tools.pending_action_decide``."""

    status: ProcessingStatus
    reply: str = ""
    message_id: int | None = None  # the stored inbound Message
    reason: str = ""
    timings_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    pending_action_id: int | None = None
    reply_message_ids: tuple[str, ...] = ()


# --- How the response manager reaches the sender ----------------------------------------


class FormattingRejected(Exception):
    """Raised by a transport when it refuses the formatted text (Telegram: bad entities);
    the response manager then sends the same reply as plain text."""


@dataclass(frozen=True)
class OutboundMedia:
    kind: Literal["photo", "document"]
    data: bytes
    file_name: str = ""
    mime_type: str = ""


class Transport(Protocol):
    """Delivery to one transport. Message ids are the transport's own, as strings.

    ``text_format`` says what ``send_text``/``edit_text`` receive: ``"telegram_html"``
    (the response manager converts Markdown and splits at ``max_message_length`` UTF-16
    units) or ``"markdown"`` (Claude's text as is). ``edit_interval_seconds`` is the least
    time between two streamed edits of one message; streaming is off when ``streams`` is
    False.
    """

    name: str
    text_format: Literal["telegram_html", "markdown"]
    max_message_length: int
    streams: bool
    edit_interval_seconds: float

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str: ...

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None: ...

    async def send_typing(self, chat_id: str) -> None: ...

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None: ...

    async def send_media(
        self, chat_id: str, media: OutboundMedia, *, caption: str = "", reply_to: str | None = None
    ) -> str: ...
