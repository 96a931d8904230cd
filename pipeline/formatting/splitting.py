"""Splitting Telegram HTML into messages that each fit Telegram's length limit.

What counts: Telegram limits the text *after entity parsing* (4096 for a message, 1024 for a
caption) in UTF-16 code units; tags do not count and ``&amp;`` counts as one. Every part this
module returns has a visible text of at most ``limit`` UTF-16 units, which is exactly that
measure. The raw HTML of a part is longer (tags, entities); nothing in the MTProto path the
bridge uses limits it, and the Bot API's request size limits are far above it.

Where a part ends, in order of preference (the last such point that fits wins):

1. a blank line outside any element (a paragraph, list or code-block boundary);
2. a blank line inside an element (inside a quote or a code block), if past half the window;
3. a line break;
4. a space;
5. anywhere, but not before a combining mark, a variation selector or a zero-width joiner, so
   that a grapheme is not torn apart where avoidable. Python strings hold code points, so a
   surrogate pair is never split, and entities are re-escaped per part, so none is cut.

The whitespace at a split point is dropped: trailing whitespace of a part and leading
whitespace of the next (inside ``pre``/``code`` only leading newlines, to keep indentation).
Elements cut by a split are closed at the end of one part and reopened, with the same
attributes (link target, code language), at the start of the next.

No part is invisible (``document.is_invisible``: only zero-width characters, a BOM, bidi or
other format controls): Telegram would refuse it as empty, so such a part is dropped. A text
that has characters but none visible becomes the one part ``INVISIBLE_FALLBACK``, so that
its reader is told something rather than nothing; a text of whitespace only gives no parts.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .document import TelegramDocument, escape_text, is_invisible, utf16_len

MESSAGE_LIMIT = 4096
INVISIBLE_FALLBACK = "(This message has no visible text.)"
CAPTION_LIMIT = 1024
_MIN_LIMIT = 2  # one astral character (an emoji) takes two UTF-16 units
_GRAPHEME_BACKOFF = 32
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")


@dataclass(frozen=True, slots=True)
class _Cut:
    """A part ends at ``end`` (exclusive); the next part starts at ``resume``."""

    end: int
    resume: int


def split_document(document: TelegramDocument, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``document`` into balanced HTML parts whose visible text fits ``limit``.

    Whitespace-only documents yield no parts; documents with characters but none visible
    yield ``INVISIBLE_FALLBACK`` (split to ``limit`` too). Raises ValueError if ``limit`` < 2.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT} UTF-16 units, got {limit}")
    text = document.text
    parts: list[str] = []
    position = _skip_space(document, 0)
    while position < len(text):
        window_end = _window_end(text, position, limit)
        cut = (
            _Cut(len(text), len(text))
            if window_end >= len(text)
            else _choose_cut(document, position, window_end)
        )
        end = cut.end
        while end > position and text[end - 1].isspace():
            end -= 1
        if end > position and not is_invisible(text[position:end]):
            parts.append(document.render(position, end))
        position = _skip_space(document, cut.resume)
    if not parts and text.strip():  # characters, none of them visible (str.strip keeps them)
        return split_document(TelegramDocument.from_html(escape_text(INVISIBLE_FALLBACK)), limit)
    return parts


def split_plain(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split plain text (no markup) by the same rules; the parts are plain text too."""
    document = TelegramDocument.from_html(escape_text(text))
    return [TelegramDocument.from_html(part).text for part in split_document(document, limit)]


def _window_end(text: str, start: int, limit: int) -> int:
    """The largest ``end`` such that ``text[start:end]`` fits in ``limit`` UTF-16 units."""
    candidate = text[start : start + limit]  # a code point is at least one unit
    if utf16_len(candidate) <= limit:
        return start + len(candidate)
    low, high = 0, len(candidate)  # invariant: candidate[:low] fits, candidate[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        if utf16_len(candidate[:middle]) <= limit:
            low = middle
        else:
            high = middle
    return start + low


def _choose_cut(document: TelegramDocument, start: int, window_end: int) -> _Cut:
    text = document.text
    half = start + (window_end - start) // 2
    blank = text.rfind("\n\n", start + 1, window_end + 2)
    inner_blank = -1
    while blank != -1:
        if not document.stack_at(blank):
            return _Cut(blank, blank + 2)
        if inner_blank == -1:
            inner_blank = blank
        blank = text.rfind("\n\n", start + 1, blank + 1)
    if inner_blank > half:
        return _Cut(inner_blank, inner_blank + 2)
    for separator in ("\n", " "):
        found = text.rfind(separator, start + 1, window_end + 1)
        if found != -1:
            return _Cut(found, found + 1)
    end = _grapheme_safe(text, start, window_end)
    return _Cut(end, end)


def _grapheme_safe(text: str, start: int, end: int) -> int:
    """Move ``end`` back so it does not fall before a mark or joiner, if that is possible."""
    candidate = end
    while candidate > start + 1 and end - candidate < _GRAPHEME_BACKOFF:
        if not _binds_to_previous(text, candidate):
            return candidate
        candidate -= 1
    return end


def _binds_to_previous(text: str, index: int) -> bool:
    char = text[index]
    return (
        char in _JOINERS
        or text[index - 1] == "\u200d"
        or unicodedata.category(char) in ("Mn", "Mc", "Me")
    )


def _skip_space(document: TelegramDocument, position: int) -> int:
    text = document.text
    in_code = any(element.tag in ("pre", "code") for element in document.stack_at(position))
    while position < len(text) and (
        text[position] == "\n" or (not in_code and text[position].isspace())
    ):
        position += 1
    return position
