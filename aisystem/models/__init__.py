"""The data model. One module per sub-domain; everything is re-exported here."""

from aisystem.models.access import AccessRule, RateCounter, RateLimitPolicy
from aisystem.models.alerts import Alert, AlertCondition, AlertRule, AlertState
from aisystem.models.api import ApiIdempotencyKey
from aisystem.models.choices import (
    AccessAction,
    ChatType,
    CredentialStatus,
    Direction,
    IntegrationStatus,
    MessageKind,
    MessageStatus,
    PendingActionStatus,
    ReplyMode,
    Role,
    Transport,
)
from aisystem.models.conversations import Conversation, HeldAttachment, Message, Workspace
from aisystem.models.delivery import OutboxItem, TelegramPeer, TelegramSession
from aisystem.models.events import CircuitBreaker, Event
from aisystem.models.identities import Chat, Identity
from aisystem.models.integrations import (
    ApiCredential,
    ApiToken,
    ConnectLink,
    ExternalCall,
    IntegrationAccount,
    PendingAction,
)
from aisystem.models.reminders import PersonSettings, Reminder, ReminderKind, ReminderStatus
from aisystem.models.usage import DailyUsage
from aisystem.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "AccessAction",
    "AccessRule",
    "Alert",
    "AlertCondition",
    "AlertRule",
    "AlertState",
    "ApiCredential",
    "ApiIdempotencyKey",
    "ApiToken",
    "Chat",
    "ChatType",
    "CircuitBreaker",
    "ConnectLink",
    "Conversation",
    "CredentialStatus",
    "DailyUsage",
    "Direction",
    "Event",
    "ExternalCall",
    "HeldAttachment",
    "Identity",
    "IntegrationAccount",
    "IntegrationStatus",
    "Message",
    "MessageKind",
    "MessageStatus",
    "OutboxItem",
    "PendingAction",
    "PendingActionStatus",
    "PersonSettings",
    "RateCounter",
    "RateLimitPolicy",
    "Reminder",
    "ReminderKind",
    "ReminderStatus",
    "ReplyMode",
    "Role",
    "TelegramPeer",
    "TelegramSession",
    "Transport",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "Workspace",
]
