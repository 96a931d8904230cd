"""Text every database and transport can store: lone surrogates and NUL replaced.

A Python ``str`` may hold half of a UTF-16 surrogate pair (a JSON ``"\\ud800"``, a UTF-16 slice
cut between the halves of an emoji). No UTF-8 encoder takes it: SQLite's driver raises
``UnicodeEncodeError`` when the message is stored, and PostgreSQL refuses NUL in text as well,
so such a message would vanish without a row, a reply or a notice. ``safe_text`` pairs up
halves that belong together and replaces the others, and NUL, with U+FFFD (the replacement
character); ``inbound_safe`` does it to every string of an ``InboundMessage`` (its text, names,
chat title, reply, file names, poll, contact, venue). The transports' adapters and the
pipeline's entry (``admission.admit``) both apply it, so it holds for every transport.

The standard library's UTF-16 codec does the pairing (``surrogatepass``), as
``pipeline.formatting.render`` does for Claude's Markdown.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, cast

from pipeline.types import InboundMessage

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` with surrogate halves paired up and lone ones and NUL as U+FFFD (the same
    object when there was nothing to replace)."""
    if _UNSAFE.search(text) is None:
        return text
    repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return repaired.replace("\x00", REPLACEMENT)


def inbound_safe(message: InboundMessage) -> InboundMessage:
    """``message`` with ``safe_text`` applied to each of its strings, nested ones included
    (the same object when none needed it). Bytes (attachments' content) are left alone."""
    return cast(InboundMessage, _safe(message))


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, tuple):
        cleaned = tuple(_safe(item) for item in value)
        return value if all(a is b for a, b in zip(cleaned, value, strict=True)) else cleaned
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            current = getattr(value, field.name)
            cleaned = _safe(current)
            if cleaned is not current:
                changes[field.name] = cleaned
        return dataclasses.replace(value, **changes) if changes else value
    return value
