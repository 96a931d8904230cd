"""Request and response shapes of the REST API (they are the OpenAPI documentation too)."""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import field_validator

from aisystem.api.selectors import HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX
from aisystem.api.text_rules import id_pattern, id_problem, text_pattern, text_problem

_MAX_ID = 2**63 - 1  # the largest id a database's bigint holds; anything above is no id
# A client's message id becomes the message's transport id (the dedup key), as the browser
# chat's does; 64 is the column's length.
CLIENT_MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


def _id_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = id_pattern()


def _text_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = text_pattern()
    # Longer text is refused with a 413 (as the gate refuses it on every transport), not 422.
    schema["maxLength"] = settings.PIPELINE["MAX_INPUT_CHARS"]


class MessageIn(Schema):
    chat_id: str = Field(
        ...,
        min_length=1,
        max_length=100,
        description="Your id for the conversation: no control or format characters (bidi "
        "controls, zero-width characters, the BOM), no spaces at either end.",
        json_schema_extra=_id_schema,
    )
    user_id: str = Field(
        ...,
        min_length=1,
        max_length=100,
        description="Your id for the person writing; the same rules as `chat_id`.",
        json_schema_extra=_id_schema,
    )
    text: str = Field(
        ...,
        min_length=1,
        description="The message: no control characters but tab, LF and CR, and at least one "
        "visible character (whitespace, zero-width and format characters alone are blank). "
        "Longer than the configured limit (`AISYSTEM_MAX_INPUT_CHARS`) is a 413.",
        json_schema_extra=_text_schema,
    )
    message_id: str | None = Field(
        None,
        pattern=CLIENT_MESSAGE_ID_PATTERN,
        description="Your id for this message (1-64 of `A-Z a-z 0-9 _ . : -`). Sent again in "
        "the same chat, it is not answered twice: you get the first one's result (409 while "
        "that is still being answered). The response's `message_id` is the server's number "
        "for the message.",
    )

    @field_validator("chat_id", "user_id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        problem = id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("text")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
        return value


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
    detail: str = Field(..., description="What is wrong, in words.")


class ValidationIssue(Schema):
    type: str = Field(..., description="What kind of problem, e.g. `missing`, `value_error`.")
    loc: list[str | int] = Field(..., description='Where: e.g. `["body", "payload", "text"]`.')
    msg: str = Field(..., description="What is wrong, in words.")


class ValidationErrorOut(Schema):
    detail: list[ValidationIssue] | str = Field(
        ...,
        description="The fields that failed validation, each with where and why; or, for a "
        "request that contradicts an earlier one (an `Idempotency-Key` or `message_id` reused "
        "for another message), a sentence.",
    )


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
