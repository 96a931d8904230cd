"""The bridge's settings (``settings.TELEGRAM_BRIDGE``), typed once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class BridgeConfig:
    session: str = "default"
    max_concurrency: int = 16
    max_pending: int = 1000
    shutdown_deadline_seconds: int = 30
    catch_up_minutes: int = 60
    catch_up_messages: int = 200
    flood_wait_max_seconds: int = 30
    album_wait_seconds: float = 1.0
    heartbeat_seconds: int = 10
    # Waits between connection attempts; the last one repeats. Not a setting: tests shorten it.
    connect_backoff_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

    @classmethod
    def from_settings(cls) -> BridgeConfig:
        raw: dict[str, Any] = dict(settings.TELEGRAM_BRIDGE)
        return cls(
            session=str(raw["SESSION"]),
            max_concurrency=int(raw["MAX_CONCURRENCY"]),
            max_pending=int(raw["MAX_PENDING"]),
            shutdown_deadline_seconds=int(raw["SHUTDOWN_DEADLINE_SECONDS"]),
            catch_up_minutes=int(raw["CATCH_UP_MINUTES"]),
            catch_up_messages=int(raw["CATCH_UP_MESSAGES"]),
            flood_wait_max_seconds=int(raw["FLOOD_WAIT_MAX_SECONDS"]),
            album_wait_seconds=float(raw["ALBUM_WAIT_SECONDS"]),
            heartbeat_seconds=int(raw["HEARTBEAT_SECONDS"]),
        )
