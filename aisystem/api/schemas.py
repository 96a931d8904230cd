"""Request and response shapes of the REST API (they are the OpenAPI documentation too)."""

from __future__ import annotations

import unicodedata
from typing import Literal

from ninja import Field, Schema
from pydantic import field_validator

_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


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
