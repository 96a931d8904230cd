"""Text with nothing visible in it: Telegram refuses a message of only zero-width characters,
a BOM or bidi controls as empty (MESSAGE_EMPTY), so the formatter never makes such a part and
sends a clear fallback instead when nothing else is left.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.formatting import (
    INVISIBLE_FALLBACK,
    is_invisible,
    render_for_telegram,
    split_plain_text,
    split_telegram_html,
    visible_text,
)
from pipeline.response_manager import ResponseManager, format_parts, plain_parts
from tests.fakes.transport import RecordingTransport

ZERO_WIDTH_SPACE = "\u200b"
BOM = "\ufeff"
INVISIBLE_ANSWERS = [
    ZERO_WIDTH_SPACE,
    BOM,
    ZERO_WIDTH_SPACE * 3 + "\n\n" + BOM,
    "\u200c\u200d\u2060",  # joiners and a word joiner
    "\u200e\u200f\u202e\u2066\u2069",  # bidi marks, an override, an isolate
    "\u00ad",  # a soft hyphen
    " \ufe0f ",  # a variation selector between spaces
    "**\u200b**",  # bold around nothing visible
    "`\u200b`",
    "[\u200b](https://example.org)",
]


@pytest.mark.parametrize("answer", INVISIBLE_ANSWERS)
def test_an_answer_with_nothing_visible_becomes_the_fallback(answer: str) -> None:
    assert [visible_text(part) for part in render_for_telegram(answer)] == [INVISIBLE_FALLBACK]
    if not any(mark in answer for mark in "*`["):  # plain text shows Markdown's marks
        assert split_plain_text(answer) == [INVISIBLE_FALLBACK]


@pytest.mark.parametrize("answer", ["", "   ", "\n\t\n"])
def test_a_blank_answer_still_gives_no_parts(answer: str) -> None:
    assert render_for_telegram(answer) == []
    assert split_plain_text(answer) == []
    assert split_telegram_html(answer) == []


def test_markup_that_renders_to_nothing_gives_no_parts_not_the_fallback() -> None:
    # "#" is the first delta of many streamed answers: an empty heading, not an empty answer.
    assert render_for_telegram("#") == []
    assert render_for_telegram("> ") == []


def test_invisible_html_given_to_the_splitter_becomes_the_fallback() -> None:
    assert split_telegram_html(f"<b>{BOM}</b>") == [INVISIBLE_FALLBACK.replace("&", "&amp;")]


def test_visible_text_is_kept_and_an_invisible_tail_is_not_sent_as_a_part_of_its_own() -> None:
    answer = "Here you are." + "\n\n" + ZERO_WIDTH_SPACE * 60

    parts = render_for_telegram(answer, limit=40)

    assert parts == ["Here you are."]


def test_text_with_zero_width_characters_inside_is_sent_as_it_is() -> None:
    answer = f"{BOM}Hello{ZERO_WIDTH_SPACE}world"
    assert render_for_telegram(answer) == [answer]


def test_the_fallback_fits_even_the_smallest_limit() -> None:
    parts = render_for_telegram(ZERO_WIDTH_SPACE, limit=10)
    assert len(parts) > 1
    assert "".join(visible_text(part) for part in parts).replace(" ", "") == (
        INVISIBLE_FALLBACK.replace(" ", "")
    )


def test_what_counts_as_invisible() -> None:
    assert is_invisible("") and is_invisible(" \n") and is_invisible(BOM + ZERO_WIDTH_SPACE)
    assert not is_invisible("a") and not is_invisible("😀") and not is_invisible("e\u0301")
    assert not is_invisible("\u2800")  # the braille blank shows as a blank Telegram accepts


# -- what the transport is given -------------------------------------------------------------


class TelegramLikeTransport(RecordingTransport):
    """Refuses what Telegram refuses as empty: a message with nothing visible once parsed."""

    def _check(self, text: str) -> None:
        super()._check(text)
        if not visible_text(text).strip(" \n\u200b\u200c\u200d\u2060\ufeff"):
            raise RuntimeError("MESSAGE_EMPTY")


@pytest.mark.parametrize("text_format", ["telegram_html", "markdown"])
def test_the_response_manager_formats_an_invisible_answer_as_the_fallback(
    text_format: Any,
) -> None:
    transport = RecordingTransport()
    transport.text_format = text_format

    assert format_parts(BOM, transport) == [INVISIBLE_FALLBACK]
    assert plain_parts(ZERO_WIDTH_SPACE, transport) == [INVISIBLE_FALLBACK]


async def test_an_invisible_answer_is_delivered_as_the_fallback_message() -> None:
    transport = TelegramLikeTransport()

    result = await ResponseManager().deliver(transport, "42", ZERO_WIDTH_SPACE + BOM)

    assert result.delivered and result.parts == 1
    assert transport.texts == [INVISIBLE_FALLBACK]
