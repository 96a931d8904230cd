"""Response formatting for Telegram: Markdown in, Telegram-safe HTML messages out.

Typical use by the response manager::

    parts = render_for_telegram(answer_markdown)                  # messages, limit 4096
    parts = render_for_telegram(caption, limit=CAPTION_LIMIT)     # media caption, limit 1024
    # Telegram rejected the entities anyway: send the plain text instead
    plain_parts = split_plain_text(html_to_plain(format_telegram_html(answer_markdown)))

Contracts, whatever the input:

* the HTML uses only ``b i u s code pre a blockquote`` (and ``<pre><code class="language-X">``),
  balanced and nested the way Telegram allows, with only the entities ``&amp; &lt; &gt;
  &quot;``; links only with ``http``, ``https``, ``tg`` or ``mailto`` targets; raw HTML in
  the Markdown comes out as escaped text;
* each part's visible text (``visible_text``) is at most ``limit`` UTF-16 code units, the
  measure Telegram applies after entity parsing (see ``splitting`` for the choice);
* empty or whitespace-only input yields no parts (an empty list), so the caller decides
  whether to say anything; Telegram would reject an empty message anyway;
* no part is invisible (``is_invisible``: only zero-width characters, a BOM, bidi marks or
  other format controls, which Telegram also rejects as empty); input made of such
  characters alone yields the one part ``INVISIBLE_FALLBACK``, a clear "(This message has no
  visible text.)", rather than a message Telegram refuses.

The Telegram dialect here is the Bot API's. Pyrogram's own HTML parser (used by the bridge)
writes the language of a code block as ``<pre language="X">``; ``to_pyrogram_html`` converts.
"""

from __future__ import annotations

from .document import (
    ALLOWED_SCHEMES,
    ALLOWED_TAGS,
    TelegramDocument,
    html_to_plain,
    is_invisible,
    normalize_html,
    utf16_len,
    visible_text,
)
from .render import render_markdown_html
from .splitting import (
    CAPTION_LIMIT,
    INVISIBLE_FALLBACK,
    MESSAGE_LIMIT,
    split_document,
    split_plain,
)


def format_telegram_html(markdown: str) -> str:
    """Render ``markdown`` as one Telegram-HTML string (not split; may exceed any limit).

    Leading and trailing whitespace is dropped; whitespace-only input gives ``""``.
    """
    document = TelegramDocument.from_html(render_markdown_html(markdown))
    text = document.text
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return document.render(start, end) if end > start else ""


def split_telegram_html(html: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split Telegram HTML into balanced parts whose visible text fits ``limit`` UTF-16 units.

    The input is read leniently and normalized (see ``document``), so every part is valid
    even when the input was not. Whitespace-only input gives ``[]``. Raises ValueError if
    ``limit`` < 2.
    """
    return split_document(TelegramDocument.from_html(html), limit)


def render_for_telegram(markdown: str, *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Markdown to the list of Telegram-HTML messages to send, in order (``[]`` if blank,
    ``[INVISIBLE_FALLBACK]`` if it has characters but none visible)."""
    return split_document(TelegramDocument.from_html(render_markdown_html(markdown)), limit)


def split_plain_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split plain text (sent without parse_mode) into parts of at most ``limit`` UTF-16 units,
    by the same preferences as the HTML splitter. Whitespace-only input gives ``[]``, input
    with nothing visible ``[INVISIBLE_FALLBACK]``."""
    return split_plain(text, limit)


def to_pyrogram_html(html: str) -> str:
    """Rewrite ``<pre><code class="language-X">`` as Pyrogram's ``<pre language="X">``.

    Pyrogram reads a ``code`` inside ``pre`` as a second, overlapping entity and ignores the
    class; everything else in the Bot API dialect reads the same. The input is normalized.
    """
    document = TelegramDocument.from_html(html)
    return document.render(dialect="pyrogram")


__all__ = [
    "ALLOWED_SCHEMES",
    "ALLOWED_TAGS",
    "CAPTION_LIMIT",
    "INVISIBLE_FALLBACK",
    "MESSAGE_LIMIT",
    "format_telegram_html",
    "html_to_plain",
    "is_invisible",
    "normalize_html",
    "render_for_telegram",
    "split_plain_text",
    "split_telegram_html",
    "to_pyrogram_html",
    "utf16_len",
    "visible_text",
]
