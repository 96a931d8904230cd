"""Real Pyrogram (kurigram 2.2.26) with only the network replaced; see ``client`` for what is
replaced and why, ``server`` for the fake server, ``builders`` for raw objects."""

from __future__ import annotations

from tests.telegram_bridge.harness.builders import (
    API_ID,
    Chat,
    contact,
    dice,
    entity,
    forwarded_from,
    group_chat,
    jpeg,
    location,
    make_user,
    now,
    poll,
    private_chat,
    session_string,
    supergroup_chat,
    utf16_length,
    venue,
    wire,
)
from tests.telegram_bridge.harness.client import (
    FakeSession,
    HarnessClient,
    Inbox,
    TelegramHarness,
)
from tests.telegram_bridge.harness.server import (
    Failure,
    FakeTelegram,
    addressee,
    raise_rpc_error,
)

__all__ = [
    "API_ID",
    "Chat",
    "Failure",
    "FakeSession",
    "FakeTelegram",
    "HarnessClient",
    "Inbox",
    "TelegramHarness",
    "addressee",
    "contact",
    "dice",
    "entity",
    "forwarded_from",
    "group_chat",
    "jpeg",
    "location",
    "make_user",
    "now",
    "poll",
    "private_chat",
    "raise_rpc_error",
    "session_string",
    "supergroup_chat",
    "utf16_length",
    "venue",
    "wire",
]
