"""A ``ClaudeRequest`` as the Messages API's request parameters (plain dicts, as the SDK
takes them): the one direction of the conversion that needs nothing from the SDK, so it lives
apart from ``client`` (the only module that may import ``anthropic``)."""

from __future__ import annotations

from typing import Any

from pipeline.types import (
    ChatTurn,
    ClaudeRequest,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ToolUseBlock,
)


def request_params(request: ClaudeRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [_turn_param(turn) for turn in request.messages],
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.input_schema)}
            for t in request.tools
        ]
    return params


def _turn_param(turn: ChatTurn) -> dict[str, Any]:
    return {"role": turn.role, "content": [_block_param(block) for block in turn.content]}


def _block_param(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        source = {"type": "base64", "media_type": block.media_type, "data": block.data_base64}
        return {"type": "image", "source": source}
    if isinstance(block, DocumentBlock):
        pdf = {"type": "base64", "media_type": "application/pdf", "data": block.data_base64}
        document: dict[str, Any] = {"type": "document", "source": pdf}
        if block.title:
            document["title"] = block.title
        return document
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input)}
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
        "is_error": block.is_error,
    }
