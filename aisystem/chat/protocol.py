"""The browser chat's wire format and per-connection limits, as plain values.

Nothing here touches the socket or the database, so every rule is tested with plain values.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from pipeline.tools import Decision

WS_PATH = "ws/chat/"

# Close codes (the 4000-4999 range is the application's; Daphne refuses 1009 from an app).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FRAME_TOO_LARGE = 4413

# A client id becomes the message's transport id (the dedup key: a message resent with the
# same id after a reconnect is answered once). 64 is the column's length.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True)
class ClientMessage:
    """``{"type": "message", "text": …, "id": …}`` from the page. ``client_id`` is the
    page's id, or a fresh one when the page sent none."""

    text: str
    client_id: str


@dataclass(frozen=True)
class ClientDecision:
    """``{"type": "decide", "action_id": N, "decision": "confirm"|"cancel", "id": …}``: a
    press of the Confirm or Cancel button under an answer that proposed a change. Whose
    request it is, is not the page's to say: the consumer decides as the socket's user."""

    action_id: int
    decision: Decision
    client_id: str


@dataclass(frozen=True)
class FrameError:
    """A frame the server refuses, with the words the page shows. ``client_id`` is set when
    the frame named one, so the page can mark that message."""

    message: str
    client_id: str | None = None


def frame_limit_bytes(max_input_chars: int) -> int:
    """The largest frame accepted: the longest text the gate accepts, in any script (UTF-8
    takes at most 4 bytes per character), plus room for the JSON around it; never under
    64 KiB. Text between the gate's limit and this is recorded and refused by the gate."""
    return max(64 * 1024, 4 * max_input_chars + 1024)


def frame_parse(raw: str) -> ClientMessage | ClientDecision | FrameError:
    """The message or button press a text frame carries, or why it is refused."""
    try:
        content = json.loads(raw)
    except ValueError:
        return FrameError("That was not valid JSON.")
    if not isinstance(content, dict):
        return FrameError('Send a JSON object such as {"type": "message", "text": "Hello"}.')
    raw_id = content.get("id")
    client_id = raw_id if isinstance(raw_id, str) and _CLIENT_ID.fullmatch(raw_id) else None
    if raw_id is not None and client_id is None:
        return FrameError("A message id must be 1-64 letters, digits or - _ . :")
    kind = content.get("type")
    if kind == "decide":
        return _decision_parse(content, client_id)
    if kind != "message":
        return FrameError(f"Unknown message type: {str(kind)[:40]!r}.", client_id)
    text = content.get("text")
    if not isinstance(text, str):
        return FrameError("A message needs a text.", client_id)
    if not text.strip():
        return FrameError("Type something first.", client_id)
    return ClientMessage(text=text, client_id=client_id or uuid.uuid4().hex)


_LARGEST_ID = 2**63 - 1  # a bigint primary key


def _decision_parse(
    content: dict[str, object], client_id: str | None
) -> ClientDecision | FrameError:
    action_id = content.get("action_id")
    # bool is an int in Python, and JSON's true is no request number.
    if type(action_id) is not int or not 0 < action_id <= _LARGEST_ID:
        return FrameError("A decision needs the number of the request it is about.", client_id)
    decision = content.get("decision")
    if decision not in get_args(Decision):
        return FrameError('A decision is "confirm" or "cancel".', client_id)
    return ClientDecision(
        action_id=action_id,
        decision="confirm" if decision == "confirm" else "cancel",
        client_id=client_id or uuid.uuid4().hex,
    )


class TokenBucket:
    """At most ``capacity`` messages at once, refilled evenly over ``per_seconds``.

    Per connection, so it lives in memory; the gate's per-identity limits (shared by every
    process) apply on top of it.
    """

    def __init__(
        self,
        *,
        capacity: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self.clock = clock
        self.tokens = float(capacity)
        self.updated = clock()

    def take(self) -> bool:
        """True if a message may pass now (and count it); False to refuse it."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
