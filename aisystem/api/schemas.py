"""Request and response shapes of the REST API (they are the OpenAPI documentation too)."""

from __future__ import annotations

import unicodedata
from typing import Literal

from ninja import Field, Schema
from pydantic import field_validator

from aisystem.api.selectors import HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX

_ALLOWED_CONTROLS = {"\n", "\r", "\t"}
_MAX_ID = 2**63 - 1  # the largest id a database's bigint holds; anything above is no id


def _reject_controls(value: str, *, allow_newlines: bool) -> str:
    for char in value:
        if allow_newlines and char in _ALLOWED_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return value


class MessageIn(Schema):
    chat_id: str = Field(
        ..., min_length=1, max_length=100, description="Your id for the conversation."
    )
    user_id: str = Field(
        ..., min_length=1, max_length=100, description="Your id for the person writing."
    )
    text: str = Field(..., min_length=1, description="The message, up to the configured limit.")

    @field_validator("chat_id", "user_id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("must not start or end with spaces")
        return _reject_controls(value, allow_newlines=False)

    @field_validator("text")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return _reject_controls(value, allow_newlines=True)


class MessageOut(Schema):
    status: Literal["answered", "rejected", "deferred", "failed"]
    reply: str
    message_id: int | None = Field(None, description="Look it up later at /api/v1/messages/{id}.")
    timings_ms: dict[str, float]
    reason: str = Field("", description="Why it was rejected, deferred or failed.")


class StoredMessageOut(Schema):
    message_id: int
    status: str
    reason: str
    text: str
    reply: str | None
    created_at: str


class ChatHistoryQuery(Schema):
    """``?after=&limit=``; out-of-range or non-integer values are a 422, not a silent clamp."""

    after: int = Field(
        0,
        ge=0,
        le=_MAX_ID,
        description="Only messages with a larger id: pass the last id you have.",
    )
    limit: int = Field(
        HISTORY_PAGE_DEFAULT,
        ge=1,
        le=HISTORY_PAGE_MAX,
        description=f"At most this many messages (1 to {HISTORY_PAGE_MAX}).",
    )


class ChatMessageOut(Schema):
    id: int = Field(..., description="Increases with time; use it as `after` to page on.")
    direction: Literal["in", "out"] = Field(
        ..., description="`in`: from your user; `out`: the assistant's."
    )
    text: str
    status: str = Field(
        ...,
        description=(
            "`in`: received, processing, answered, rejected, ignored, deferred, interrupted or "
            "failed; `out`: delivered, processing or failed."
        ),
    )
    created_at: str = Field(..., description="ISO 8601, with its UTC offset.")


class ChatHistoryOut(Schema):
    items: list[ChatMessageOut] = Field(..., description="Oldest first.")


class ErrorOut(Schema):
    detail: str


class ComponentHealth(Schema):
    ok: bool
    detail: str


class HealthOut(Schema):
    status: Literal["ok", "degraded", "down"]
    database: ComponentHealth
    channel_layer: ComponentHealth
    claude: ComponentHealth
    credentials: ComponentHealth
    bridge: ComponentHealth
