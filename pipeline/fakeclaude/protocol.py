"""The Messages API wire shapes, as pure functions: validation, replies, JSON and SSE events.

Shapes follow what the ``anthropic`` SDK parses (``types/message.py``, ``types/raw_*.py`` and
``lib/streaming/_messages.py``). Token counts are estimates: about four characters per token,
at least one, and a flat 1600 per image or document block (base64 length says little).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from pipeline.fakeclaude.scenarios import Scenario

_ID_ALPHABET = string.ascii_letters + string.digits
_MEDIA_BLOCK_TOKENS = 1600
_MEDIA_BLOCK_TYPES = ("image", "document")
_TOOL_JSON_CHUNK = 12


class InvalidRequestError(ValueError):
    """The body is not a request the real API would accept; str(error) is the API message."""


def new_id(prefix: str) -> str:
    """An id shaped like the API's: ``req_01…``, ``msg_01…``, ``toolu_01…``."""
    return f"{prefix}_01" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def parse_request(raw: bytes, *, require_max_tokens: bool = True) -> dict[str, Any]:
    """Decode and check a Messages request body; raises InvalidRequestError like a 400.

    ``require_max_tokens`` False checks a ``/v1/messages/count_tokens`` body instead.
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequestError(f"There was an error parsing the body as JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    required = ("model", "max_tokens", "messages") if require_max_tokens else ("model", "messages")
    for name in required:
        if name not in body:
            raise InvalidRequestError(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequestError("model: Input should be a valid string")
    _check_messages(body["messages"])
    if not require_max_tokens:
        return body
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidRequestError("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise InvalidRequestError("max_tokens: Input should be greater than or equal to 1")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequestError("stream: Input should be a valid boolean")
    return body


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list):
        raise InvalidRequestError("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequestError("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequestError(f"messages.{index}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise InvalidRequestError(
                f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
        content = message.get("content")
        if not isinstance(content, str | list):
            raise InvalidRequestError(f"messages.{index}.content: Field required")
        if isinstance(content, list) and not all(
            isinstance(block, dict) and isinstance(block.get("type"), str) for block in content
        ):
            raise InvalidRequestError(f"messages.{index}.content: each block needs a 'type'")


def content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def count_input_tokens(body: dict[str, Any]) -> int:
    """Estimate input tokens of a (validated) request: system, tools and every message."""
    media = 0
    rest: list[object] = [body.get("system", ""), body.get("tools", [])]
    for message in body["messages"]:
        for block in content_blocks(message):
            if block.get("type") in _MEDIA_BLOCK_TYPES:
                media += 1
            else:
                rest.append(block)
    serialized = json.dumps(rest, ensure_ascii=False, separators=(",", ":"))
    return estimate_tokens(serialized) + media * _MEDIA_BLOCK_TOKENS


def echo_text(body: dict[str, Any]) -> str:
    """The default answer: what the last user message said, plus what it carried."""
    user_messages = [m for m in body["messages"] if m.get("role") == "user"]
    if not user_messages:
        return "You said nothing."
    texts: list[str] = []
    attached: dict[str, int] = {}
    for block in content_blocks(user_messages[-1]):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_result":
            texts.append(f"tool result {_tool_result_text(block)}")
        else:
            attached[str(kind)] = attached.get(str(kind), 0) + 1
    said = " ".join(text.strip() for text in texts if text.strip())
    reply = f"You said: {said}" if said else "You said nothing"
    if attached:
        parts = ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in attached.items())
        reply += f" [attached: {parts}]"
    return reply


def _tool_result_text(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


@dataclass(frozen=True)
class TextPart:
    pieces: tuple[str, ...]  # one content_block_delta each

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class ToolPart:
    id: str
    name: str
    input: dict[str, Any]

    @property
    def json_pieces(self) -> tuple[str, ...]:
        # The real API opens a tool_use block with an empty partial_json delta.
        encoded = json.dumps(self.input, ensure_ascii=False)
        chunks = [
            encoded[i : i + _TOOL_JSON_CHUNK] for i in range(0, len(encoded), _TOOL_JSON_CHUNK)
        ]
        return ("", *chunks)


ReplyPart = TextPart | ToolPart


@dataclass(frozen=True)
class Reply:
    """What the assistant answers, before it is rendered as JSON or as SSE events."""

    message_id: str
    model: str
    parts: tuple[ReplyPart, ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int

    @property
    def output_tokens(self) -> int:
        return sum(part_tokens(part) for part in self.parts)


def split_text(text: str) -> tuple[str, ...]:
    """Word-sized deltas with leading whitespace, the way tokenizers cut text."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces = [*pieces[:-1], pieces[-1] + tail] if pieces else [tail]
    return tuple(pieces)


def piece_tokens(piece: str) -> int:
    return estimate_tokens(piece)


def part_tokens(part: ReplyPart) -> int:
    if isinstance(part, TextPart):
        return sum(piece_tokens(piece) for piece in part.pieces) if part.pieces else 1
    return estimate_tokens(part.name + json.dumps(part.input))


def plan_reply(body: dict[str, Any], scenario: Scenario) -> Reply:
    """Decide the answer to a validated request: text (cut at max_tokens/stop_sequences) or tool."""
    text = scenario.reply_text if scenario.reply_text is not None else echo_text(body)
    stop_reason, stop_sequence = "end_turn", None
    parts: list[ReplyPart] = []
    if scenario.tool_use is not None:
        text = scenario.tool_use.text_before
        stop_reason = "tool_use"
    for candidate in body.get("stop_sequences") or []:
        if isinstance(candidate, str) and candidate and candidate in text:
            text, stop_reason, stop_sequence = (
                text.split(candidate, 1)[0],
                "stop_sequence",
                candidate,
            )
            break
    pieces, truncated = _fit(split_text(text), budget=int(body["max_tokens"]))
    if truncated:
        stop_reason, stop_sequence = "max_tokens", None
    if pieces or scenario.tool_use is None:
        parts.append(TextPart(pieces))
    if scenario.tool_use is not None and not truncated and stop_reason == "tool_use":
        tool = scenario.tool_use
        parts.append(ToolPart(new_id("toolu"), tool.name, dict(tool.input)))
    return Reply(
        message_id=new_id("msg"),
        model=str(body["model"]),
        parts=tuple(parts),
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        input_tokens=count_input_tokens(body),
    )


def _fit(pieces: tuple[str, ...], *, budget: int) -> tuple[tuple[str, ...], bool]:
    kept: list[str] = []
    used = 0
    for piece in pieces:
        used += piece_tokens(piece)
        if used > budget:
            return tuple(kept), True
        kept.append(piece)
    return tuple(kept), False


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _block_json(part: ReplyPart, *, complete: bool) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text if complete else ""}
    return {
        "type": "tool_use",
        "id": part.id,
        "name": part.name,
        "input": part.input if complete else {},
    }


def message_json(reply: Reply) -> dict[str, Any]:
    """The non-streaming response body."""
    return {
        "id": reply.message_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [_block_json(part, complete=True) for part in reply.parts],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": _usage(reply.input_tokens, reply.output_tokens),
    }


@dataclass(frozen=True)
class Event:
    """One SSE frame. ``tokens`` > 0 marks a content delta (paced, and counted for failures)."""

    name: str
    data: dict[str, Any]
    tokens: int = 0

    def encode(self) -> bytes:
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"event: {self.name}\ndata: {payload}\n\n".encode()


def stream_events(reply: Reply) -> list[Event]:
    """The complete event sequence, in the order the real API sends it."""
    start = message_json(reply) | {"content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = _usage(reply.input_tokens, 1)
    events = [Event("message_start", {"type": "message_start", "message": start})]
    for index, part in enumerate(reply.parts):
        block = _block_json(part, complete=False)
        events.append(
            Event(
                "content_block_start", _at(index, "content_block_start") | {"content_block": block}
            )
        )
        if index == 0:
            events.append(Event("ping", {"type": "ping"}))
        events.extend(_delta_events(index, part))
        events.append(Event("content_block_stop", _at(index, "content_block_stop")))
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
    usage = {"output_tokens": reply.output_tokens}
    events.append(Event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(Event("message_stop", {"type": "message_stop"}))
    return events


def _at(index: int, kind: str) -> dict[str, Any]:
    return {"type": kind, "index": index}


def _delta_events(index: int, part: ReplyPart) -> list[Event]:
    if isinstance(part, TextPart):
        deltas = [{"type": "text_delta", "text": piece} for piece in part.pieces]
    else:
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in part.json_pieces]
    return [
        Event(
            "content_block_delta",
            _at(index, "content_block_delta") | {"delta": delta},
            tokens=estimate_tokens(str(delta.get("text", delta.get("partial_json", "")))),
        )
        for delta in deltas
    ]


def stream_error_event(error_type: str, message: str) -> Event:
    """The mid-stream ``error`` event (the HTTP status stays 200)."""
    return Event("error", {"type": "error", "error": {"type": error_type, "message": message}})
