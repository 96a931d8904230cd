"""The character rules of the API's string fields: as Python checks that say what is wrong,
and as the JSON Schema ``pattern`` the OpenAPI document states for each field.

* ``chat_id`` and ``user_id`` hold no control (Cc) or format (Cf) characters: U+202E and the
  other bidi controls, zero-width characters and the BOM would make an id look like another
  one in the admin and the live feed. They do not start or end with whitespace.
* ``text`` holds no control characters other than tab, line feed and carriage return, and
  is not blank: it shows at least one character (``pipeline.security_gate.is_blank``).

An unpaired surrogate (``"\\ud800"`` in the JSON) is no character at all: such a string is
refused as invalid Unicode before these rules run, and the patterns leave it out, since
a JSON Schema pattern matches characters, never halves of one.

The patterns are built from the same predicates as the checks, once per process (when the
schema is first generated); the tests check on random strings that each pattern accepts
exactly what its check accepts.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable, Iterator

from pipeline.security_gate import INVISIBLE_FILLERS, is_blank, is_invisible

_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r")
# Every rule here is about whitespace (all of it is Cc, Zs, Zl or Zp), controls, format
# characters or the invisible fillers: no other character can be forbidden or invisible, so
# building a pattern tests only these (a few hundred, found with one C call per code point).
_RULED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def _category(char: str) -> str:
    return unicodedata.category(char)


def id_forbidden(char: str) -> bool:
    """A character no chat or user id may hold: a control or a format character."""
    return _category(char) in ("Cc", "Cf", "Cs")


def text_forbidden(char: str) -> bool:
    """A character no text may hold: a control other than tab, LF and CR."""
    if char in _TEXT_CONTROLS_ALLOWED:
        return False
    return _category(char) in ("Cc", "Cs")


def id_problem(value: str) -> str | None:
    """Why ``value`` is no acceptable chat or user id, or None if it is one."""
    if value != value.strip():
        return "must not start or end with spaces"
    for char in value:
        if id_forbidden(char):
            return f"must not contain control or format characters (found U+{ord(char):04X})"
    return None


def text_problem(value: str) -> str | None:
    """Why ``value`` is no acceptable message text, or None if it is one."""
    for char in value:
        if text_forbidden(char):
            return f"must not contain control characters (found U+{ord(char):04X})"
    if is_blank(value):
        return "must not be blank (it shows no character)"
    return None


@functools.cache
def id_pattern() -> str:
    """``chat_id``/``user_id``: a non-space first and last character, nothing forbidden."""
    forbidden = _codepoints(id_forbidden)
    edge = forbidden | _codepoints(str.isspace)
    return f"^[^{_ranges(edge)}]([^{_ranges(forbidden)}]*[^{_ranges(edge)}])?$"


@functools.cache
def text_pattern() -> str:
    """``text``: invisible characters, one visible character, then anything allowed. Each
    part's class excludes the next one's first character, so matching takes linear time."""
    forbidden = _codepoints(text_forbidden)
    invisible = _codepoints(is_invisible) - forbidden
    return f"^[{_ranges(invisible)}]*[^{_ranges(forbidden | invisible)}][^{_ranges(forbidden)}]*$"


@functools.cache
def _ruled_characters() -> tuple[str, ...]:
    return tuple(
        char
        for char in map(chr, range(sys.maxunicode + 1))
        if unicodedata.category(char) in _RULED_CATEGORIES or char in INVISIBLE_FILLERS
    )


def _codepoints(predicate: Callable[[str], bool]) -> frozenset[int]:
    return frozenset(ord(char) for char in _ruled_characters() if predicate(char))


def _ranges(codes: frozenset[int]) -> str:
    """A regular-expression character class body for ``codes``, as ranges. Characters of the
    Basic Multilingual Plane are written ``\\uXXXX`` (understood by Python, ECMAScript and
    Rust regular expressions alike); the others literally, since no escape for them is."""
    return "".join(
        _char(start) if start == end else f"{_char(start)}-{_char(end)}"
        for start, end in _runs(sorted(codes))
    )


def _runs(codes: list[int]) -> Iterator[tuple[int, int]]:
    if not codes:
        return
    start = previous = codes[0]
    for code in codes[1:]:
        if code != previous + 1:
            yield start, previous
            start = code
        previous = code
    yield start, previous


def _char(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)
