"""``settings.LIVE_FEED``, typed (settings.py documents each key and reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings


@dataclass(frozen=True)
class LiveFeedConfig:
    source: Literal["database", "channel_layer"]
    poll_seconds: float
    reorder_window_seconds: float
    history: int
    recheck_seconds: float


def live_feed_config() -> LiveFeedConfig:
    """Read on each call, so tests that change the setting are seen."""
    raw: dict[str, Any] = settings.LIVE_FEED
    return LiveFeedConfig(
        source="channel_layer" if raw["SOURCE"] == "channel_layer" else "database",
        poll_seconds=float(raw["POLL_SECONDS"]),
        reorder_window_seconds=float(raw["REORDER_WINDOW_SECONDS"]),
        history=int(raw["HISTORY"]),
        recheck_seconds=float(raw["RECHECK_SECONDS"]),
    )
