"""A fake Telegram at the network edge, for tests and benchmarks.

Real Pyrogram (kurigram 2.2.26) with only the network replaced: ``HarnessClient`` is a real
``pyrogram.Client`` whose MTProto sessions are ``FakeSession`` objects that ask ``FakeTelegram``,
an in-process server that answers requests as Telegram would and records each one. Everything
above the session stays real (sign-in from a session string, ``Client.invoke`` and its peer
cache, the dispatcher and the parsers, file transfers), so code under test talks to it exactly
as it talks to Telegram. It ships beside the bridge, as ``pipeline.fakeclaude`` does beside the
Claude client, so that ``bench/`` can drive the bridge without importing ``tests``; it needs
neither Django nor the database.

- ``server``: ``FakeTelegram`` (its answers, ``requests`` and ``request_times``, scripted
  ``Failure``s, unreachable spells);
- ``client``: ``HarnessClient``, ``FakeSession``, and ``TelegramHarness`` (a client plus raw
  messages and media fed through ``Client.handle_updates``, with an ``Inbox`` of what the
  dispatcher parsed);
- ``builders``: raw MTProto objects (people, chats, entities, media that needs no server) and
  ``wire``, the TL round trip that gives an object its off-the-wire shape.
"""

from __future__ import annotations

from telegram_bridge.faketelegram.client import FakeSession, HarnessClient, Inbox, TelegramHarness
from telegram_bridge.faketelegram.server import Failure, FakeTelegram

__all__ = ["Failure", "FakeSession", "FakeTelegram", "HarnessClient", "Inbox", "TelegramHarness"]
