"""Enumerations shared by models, services and the pipeline.

A member spells out its label only where Django's default, derived from the member's name
(``TEXT`` -> "Text", ``COOLING_DOWN`` -> "Cooling Down"), is not the one wanted.
"""

from __future__ import annotations

from django.db import models


class Transport(models.TextChoices):
    TELEGRAM = "telegram"
    WEB = "web", "Browser chat"
    API = "api", "REST API"


class Role(models.TextChoices):
    """What staff know about a person. Rules and rate-limit policies match on it."""

    GUEST = "guest"
    MEMBER = "member"
    TRUSTED = "trusted"
    ADMIN = "admin"


class ChatType(models.TextChoices):
    PRIVATE = "private"
    GROUP = "group"
    SUPERGROUP = "supergroup"
    CHANNEL = "channel"
    BOT = "bot"
    WEB = "web", "Browser"
    API = "api", "API"


class ReplyMode(models.TextChoices):
    MENTION = "mention", "Only when mentioned or replied to"
    ALL = "all", "Every message"


class AccessAction(models.TextChoices):
    ALLOW = "allow"
    DENY = "deny"


class CredentialStatus(models.TextChoices):
    ACTIVE = "active"
    COOLING_DOWN = "cooling_down", "Cooling down"
    INVALID = "invalid"
    DISABLED = "disabled"


class Direction(models.TextChoices):
    INBOUND = "in"
    OUTBOUND = "out"


class MessageKind(models.TextChoices):
    """The stored content kind. The same list, in the same order, as ``pipeline.types``'s
    ``CONTENT_KINDS`` (the core does not import the pipeline; a test keeps the two equal)."""

    TEXT = "text"
    COMMAND = "command"
    PHOTO = "photo"
    DOCUMENT = "document"
    VOICE = "voice", "Voice or audio"
    VIDEO = "video"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    POLL = "poll"
    UNKNOWN = "unknown"


class MessageStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSING = "processing"
    ANSWERED = "answered"
    REJECTED = "rejected"
    IGNORED = "ignored"
    DEFERRED = "deferred"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DELIVERED = "delivered"


class IntegrationStatus(models.TextChoices):
    """Whether the assistant can act with a connected account's token."""

    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"


class PendingActionStatus(models.TextChoices):
    """A write a tool proposed, waiting for the person: pending -> running -> done or failed;
    pending -> cancelled or expired."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
