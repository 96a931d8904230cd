"""What the fake remembers about each request, for tests to assert on."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SECRET_HEADERS = frozenset({"x-api-key", "authorization"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. Secret headers are redacted; ``api_key`` is kept
    so tests can check which credential was used (the fake only ever sees test keys)."""

    request_id: str
    method: str
    path: str
    headers: dict[str, str]
    api_key: str | None
    auth_scheme: str | None  # "x-api-key" or "bearer"
    body: dict[str, Any] | None  # None when the body was not valid JSON
    scenario: str | None  # None when the request was refused before a scenario was picked
    status: int  # 0 when the connection was dropped before any response
    received_at: float = field(default_factory=time.monotonic)

    @property
    def stream(self) -> bool:
        return bool(self.body and self.body.get("stream"))

    @property
    def block_types(self) -> list[str]:
        """Content block types over all messages, in order ("text", "image", "document", ...)."""
        if not self.body:
            return []
        types: list[str] = []
        for message in self.body.get("messages", []):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                types.append("text")
            elif isinstance(content, list):
                types.extend(str(block.get("type")) for block in content if isinstance(block, dict))
        return types


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased headers with the credentials replaced by ``[redacted]``."""
    return {
        name.lower(): ("[redacted]" if name.lower() in SECRET_HEADERS else value)
        for name, value in headers
    }
