"""The webhook tests' receiver and subscriptions, for the webhook counters here."""

from __future__ import annotations

from tests.webhooks.conftest import allow_private, receiver, subscribe

__all__ = ["allow_private", "receiver", "subscribe"]
