"""A Telegram-HTML message as visible text plus formatting runs.

``TelegramDocument.from_html`` reads HTML in Telegram's dialect (Bot API ``parse_mode=HTML``)
and keeps only what Telegram accepts, repaired to Telegram's nesting rules:

* tags: ``b i u s code pre a blockquote`` (``strong em ins strike del`` map to them); any other
  tag is dropped and its text kept;
* ``<a>`` needs an ``href`` with an allowed scheme (``http https tg mailto``), otherwise the text
  stays and the link goes;
* ``pre`` and ``code`` contain no other entity, except ``<pre><code class="language-X">`` which
  names the language of a code block;
* an entity never contains another of its own kind, and ``a`` never contains ``code``/``pre``
  (the Bot API: "all other entities can't contain each other");
* unbalanced tags are closed at the end, stray closing tags are ignored.

The document stores the visible text (entities unescaped) and, for each run of text, the stack
of elements it sits in. Rendering any slice of the text yields balanced HTML, which is how the
splitter closes and reopens formatting at a split point.
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urlsplit

ALLOWED_TAGS = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote"})
ALLOWED_SCHEMES = frozenset({"http", "https", "tg", "mailto"})
_SYNONYMS = {"strong": "b", "em": "i", "ins": "u", "strike": "s", "del": "s"}
_LANGUAGE_EXTRA_CHARS = frozenset("+-#_.")
_CODE_TAGS = frozenset({"code", "pre"})
Dialect = Literal["bot_api", "pyrogram"]


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# Characters that show nothing on their own: Telegram trims them like whitespace and refuses
# a message made of nothing else (MESSAGE_EMPTY). Controls and format characters (zero-width
# space, joiners, the BOM, bidi marks and isolates, soft hyphen, tags) and the combiners that
# only modify a neighbour (variation selectors, the combining grapheme joiner).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_INVISIBLE_EXTRA = frozenset("\u034f") | frozenset(map(chr, range(0xFE00, 0xFE10)))


def is_invisible(text: str) -> bool:
    """True if ``text`` shows nothing: every character is whitespace or one of the invisible
    characters above ("" too). Telegram rejects such a message as empty."""
    return all(
        char.isspace()
        or char in _INVISIBLE_EXTRA
        or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        or 0xE0100 <= ord(char) <= 0xE01EF  # variation selectors supplement
        for char in text
    )


def escape_text(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` for use as Telegram-HTML text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    """Escape a value for a double-quoted attribute, using only entities Telegram knows."""
    return escape_text(value).replace('"', "&quot;")


def is_allowed_href(href: str) -> bool:
    """True if ``href`` is an absolute URL with a scheme Telegram may link (no control chars)."""
    if not href or any(ord(char) < 32 or ord(char) == 127 for char in href):
        return False
    try:
        scheme = urlsplit(href).scheme
    except ValueError:  # e.g. an unbalanced "[" in the host part
        return False
    return scheme.lower() in ALLOWED_SCHEMES


def sanitize_language(raw: str) -> str:
    """Return a code-block language name safe for a class attribute ('' when there is none)."""
    words = raw.strip().split()
    if not words:
        return ""
    return "".join(c for c in words[0] if c.isalnum() or c in _LANGUAGE_EXTRA_CHARS)[:32]


@dataclass(frozen=True, slots=True)
class Element:
    """One formatting element; ``href`` for links; ``in_pre`` marks the ``code`` of a
    ``<pre><code class="language-X">`` block, whose ``language`` may be ''."""

    tag: str
    href: str = ""
    language: str = ""
    in_pre: bool = False

    def open_tag(self) -> str:
        if self.tag == "a":
            return f'<a href="{escape_attribute(self.href)}">'
        if self.tag == "code" and self.language:
            return f'<code class="language-{escape_attribute(self.language)}">'
        return f"<{self.tag}>"

    def close_tag(self) -> str:
        return f"</{self.tag}>"


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of visible text starting at ``start`` inside the elements ``stack`` (outermost
    first, as indexes into ``TelegramDocument.elements``)."""

    start: int
    text: str
    stack: tuple[int, ...]


@dataclass(frozen=True)
class TelegramDocument:
    """Visible text plus the formatting runs that cover it, gap-free and in order."""

    text: str
    runs: tuple[Run, ...]
    elements: tuple[Element, ...]
    run_starts: tuple[int, ...]

    @classmethod
    def from_html(cls, source: str) -> TelegramDocument:
        """Parse Telegram-dialect HTML leniently (see the module docstring); never raises."""
        builder = _Builder()
        builder.feed(source)
        builder.close()
        builder.flush()
        runs = tuple(builder.runs)
        return cls(
            text="".join(run.text for run in runs),
            runs=runs,
            elements=tuple(builder.elements),
            run_starts=tuple(run.start for run in runs),
        )

    def stack_at(self, position: int) -> tuple[Element, ...]:
        """The elements (outermost first) around the character at ``position``."""
        if not self.runs:
            return ()
        run = self.runs[max(0, bisect.bisect_right(self.run_starts, position) - 1)]
        return tuple(self.elements[index] for index in run.stack)

    def render(
        self, start: int = 0, end: int | None = None, *, dialect: Dialect = "bot_api"
    ) -> str:
        """Balanced HTML for the visible text ``text[start:end]``: every element cut by the
        range is closed at its end and (re)opened at its start. Empty elements vanish.

        ``dialect="pyrogram"`` writes a code block's language as ``<pre language="X">``
        instead of the Bot API's ``<pre><code class="language-X">``."""
        stop = len(self.text) if end is None else end
        out: list[str] = []
        open_ids: list[int] = []
        index = max(0, bisect.bisect_right(self.run_starts, start) - 1)
        while index < len(self.runs) and self.runs[index].start < stop:
            run = self.runs[index]
            index += 1
            piece = run.text[max(0, start - run.start) : stop - run.start]
            if not piece:
                continue
            common = 0
            limit = min(len(open_ids), len(run.stack))
            while common < limit and open_ids[common] == run.stack[common]:
                common += 1
            while len(open_ids) > common:
                out.append(self._close_tag(open_ids.pop(), dialect))
            for depth in range(common, len(run.stack)):
                out.append(self._open_tag(run.stack, depth, dialect))
                open_ids.append(run.stack[depth])
            out.append(escape_text(piece))
        while open_ids:
            out.append(self._close_tag(open_ids.pop(), dialect))
        return "".join(out)

    def _open_tag(self, stack: tuple[int, ...], depth: int, dialect: Dialect) -> str:
        element = self.elements[stack[depth]]
        if dialect != "pyrogram":
            return element.open_tag()
        if element.in_pre:
            return ""
        if element.tag == "pre" and depth + 1 < len(stack):
            language = self.elements[stack[depth + 1]].language
            if language:
                return f'<pre language="{escape_attribute(language)}">'
        return element.open_tag()

    def _close_tag(self, element_id: int, dialect: Dialect) -> str:
        element = self.elements[element_id]
        if dialect == "pyrogram" and element.in_pre:
            return ""
        return element.close_tag()


class _Builder(HTMLParser):
    """Collects runs and elements, applying Telegram's tag and nesting rules on the way."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.runs: list[Run] = []
        # Open tags by canonical name; ``None`` marks a tag that was refused, so that its
        # closing tag is swallowed without closing anything else.
        self._open: list[tuple[str, int | None]] = []
        self._length = 0
        self._text_since_open = False
        # Text is buffered per stack and joined once, so that many small data events (around
        # dropped tags) stay linear.
        self._pending: list[str] = []
        self._pending_stack: tuple[int, ...] = ()
        self._pending_start = 0

    def _effective(self) -> list[Element]:
        return [self.elements[i] for _, i in self._open if i is not None]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name = _SYNONYMS.get(tag, tag)
        if name not in ALLOWED_TAGS:
            return
        element = self._admit(name, {key: value or "" for key, value in attrs})
        if element is None:
            self._open.append((name, None))
            return
        self.elements.append(element)
        self._open.append((name, len(self.elements) - 1))
        self._text_since_open = False

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """A self-closed tag (``<b/>``) covers no text, so it is dropped."""

    def handle_endtag(self, tag: str) -> None:
        name = _SYNONYMS.get(tag, tag)
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth][0] == name:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        if not data:
            return
        self._text_since_open = True
        stack = tuple(i for _, i in self._open if i is not None)
        if stack != self._pending_stack:
            self.flush()
            self._pending_stack = stack
            self._pending_start = self._length
        self._pending.append(data)
        self._length += len(data)

    def flush(self) -> None:
        """Turn the buffered text into a run."""
        if self._pending:
            text = "".join(self._pending)
            self.runs.append(Run(self._pending_start, text, self._pending_stack))
            self._pending = []

    def _admit(self, name: str, attrs: dict[str, str]) -> Element | None:
        """The element to open for tag ``name``, or None when Telegram would not accept it."""
        effective = self._effective()
        open_tags = {element.tag for element in effective}
        if name in open_tags:
            return None
        if name == "code" and effective and effective[-1].tag == "pre":
            if self._text_since_open:
                return None
            css_class = attrs.get("class", "")
            language = (
                css_class.removeprefix("language-") if css_class.startswith("language-") else ""
            )
            return Element("code", language=sanitize_language(language), in_pre=True)
        if open_tags & _CODE_TAGS:
            return None
        if name in ("code", "pre", "blockquote") and "a" in open_tags:
            return None
        if name == "a":
            href = attrs.get("href", "").strip()
            return Element("a", href=href) if is_allowed_href(href) else None
        return Element(name)


def visible_text(source: str) -> str:
    """The text Telegram would display for ``source``: tags removed, entities unescaped."""
    return TelegramDocument.from_html(source).text


def normalize_html(source: str) -> str:
    """``source`` re-serialized in canonical, Telegram-valid form (see the module docstring)."""
    return TelegramDocument.from_html(source).render()


def html_to_plain(source: str) -> str:
    """Plain text for sending without ``parse_mode`` after Telegram rejected the entities.

    It is the visible text with each link's target appended in parentheses when the link text
    does not already show it, so the result can be longer than the visible text: split it with
    ``split_plain_text`` rather than reusing the HTML parts' boundaries.
    """
    document = TelegramDocument.from_html(source)
    link_texts: dict[int, list[str]] = {}
    link_ends: dict[int, int] = {}
    for position, run in enumerate(document.runs):
        for element_id in run.stack:
            if document.elements[element_id].tag == "a":
                link_texts.setdefault(element_id, []).append(run.text)
                link_ends[element_id] = position
    out: list[str] = []
    for position, run in enumerate(document.runs):
        out.append(run.text)
        for element_id in reversed(run.stack):
            if link_ends.get(element_id) != position:
                continue
            href = document.elements[element_id].href
            if href.removeprefix("mailto:") != "".join(link_texts[element_id]).strip():
                out.append(f" ({href})")
    return "".join(out)


__all__ = [
    "ALLOWED_SCHEMES",
    "ALLOWED_TAGS",
    "Element",
    "Run",
    "TelegramDocument",
    "escape_attribute",
    "escape_text",
    "html_to_plain",
    "is_allowed_href",
    "is_invisible",
    "normalize_html",
    "sanitize_language",
    "utf16_len",
    "visible_text",
]
