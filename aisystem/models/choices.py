"""Enumerations shared by models, services and the pipeline."""

from __future__ import annotations

from django.db import models


class Transport(models.TextChoices):
    TELEGRAM = "telegram", "Telegram"
    WEB = "web", "Browser chat"
    API = "api", "REST API"


class Role(models.TextChoices):
    """What staff know about a person. Rules and rate-limit policies match on it."""

    GUEST = "guest", "Guest"
    MEMBER = "member", "Member"
    TRUSTED = "trusted", "Trusted"
    ADMIN = "admin", "Admin"


class ChatType(models.TextChoices):
    PRIVATE = "private", "Private"
    GROUP = "group", "Group"
    SUPERGROUP = "supergroup", "Supergroup"
    CHANNEL = "channel", "Channel"
    BOT = "bot", "Bot"
    WEB = "web", "Browser"
    API = "api", "API"


class ReplyMode(models.TextChoices):
    MENTION = "mention", "Only when mentioned or replied to"
    ALL = "all", "Every message"


class AccessAction(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"


class CredentialStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COOLING_DOWN = "cooling_down", "Cooling down"
    INVALID = "invalid", "Invalid"
    DISABLED = "disabled", "Disabled"


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    COMMAND = "command", "Command"
    PHOTO = "photo", "Photo"
    DOCUMENT = "document", "Document"
    VOICE = "voice", "Voice or audio"
    VIDEO = "video", "Video"
    STICKER = "sticker", "Sticker"
    LOCATION = "location", "Location"
    CONTACT = "contact", "Contact"
    POLL = "poll", "Poll"
    UNKNOWN = "unknown", "Unknown"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    ANSWERED = "answered", "Answered"
    REJECTED = "rejected", "Rejected"
    IGNORED = "ignored", "Ignored"
    DEFERRED = "deferred", "Deferred"
    INTERRUPTED = "interrupted", "Interrupted"
    FAILED = "failed", "Failed"
    DELIVERED = "delivered", "Delivered"
