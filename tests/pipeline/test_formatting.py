"""Markdown to Telegram HTML, and splitting it into messages Telegram accepts."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.formatting import (
    CAPTION_LIMIT,
    INVISIBLE_FALLBACK,
    MESSAGE_LIMIT,
    format_telegram_html,
    html_to_plain,
    is_invisible,
    render_for_telegram,
    split_plain_text,
    split_telegram_html,
    to_pyrogram_html,
    utf16_len,
    visible_text,
)

# --- a small validator: what Telegram's HTML parse mode accepts -------------------------------

_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}
_SCHEMES = {"http", "https", "tg", "mailto"}
_ENTITIES = ("&amp;", "&lt;", "&gt;", "&quot;")


class _TelegramHtmlValidator(HTMLParser):
    """Collects every way a string falls outside Telegram's HTML dialect."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.errors.append(f"tag <{tag}> not allowed")
        self._check_attributes(tag, attrs)
        self._check_nesting(tag)
        self.stack.append(tag)

    def _check_attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            if len(attrs) != 1 or attrs[0][0] != "href":
                self.errors.append(f"<a> needs exactly one href, got {attrs}")
            elif urlsplit(attrs[0][1] or "").scheme.lower() not in _SCHEMES:
                self.errors.append(f"link scheme not allowed: {attrs}")
        elif tag == "code" and attrs:
            name, value = attrs[0]
            if len(attrs) != 1 or name != "class" or not (value or "").startswith("language-"):
                self.errors.append(f"bad <code> attributes {attrs}")
            if self.stack[-1:] != ["pre"]:
                self.errors.append("a code language outside <pre>")
        elif attrs:
            self.errors.append(f"<{tag}> takes no attributes, got {attrs}")

    def _check_nesting(self, tag: str) -> None:
        if tag in self.stack:
            self.errors.append(f"<{tag}> nested in itself")
        if self.stack and self.stack[-1] == "pre" and tag == "code":
            return
        if {"code", "pre"} & set(self.stack):
            self.errors.append(f"<{tag}> inside code/pre")
        if tag in ("code", "pre") and "a" in self.stack:
            self.errors.append(f"<{tag}> inside a link")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> does not close {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if any(char in data for char in "<>&"):
            self.errors.append(f"unescaped markup character in {data!r}")

    def handle_entityref(self, name: str) -> None:
        if f"&{name};" not in _ENTITIES:
            self.errors.append(f"entity &{name}; not allowed")

    def handle_charref(self, name: str) -> None:
        self.errors.append(f"character reference &#{name}; (we only emit named ones)")

    def handle_comment(self, data: str) -> None:
        self.errors.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.errors.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.errors.append("processing instruction")


def telegram_html_errors(html: str) -> list[str]:
    validator = _TelegramHtmlValidator()
    validator.feed(html)
    validator.close()
    errors = validator.errors
    if validator.stack:
        errors.append(f"unclosed {validator.stack}")
    for match in re.finditer("&", html):
        if not html.startswith(_ENTITIES, match.start()):
            errors.append(f"bare or unknown entity: {html[match.start() :][:8]!r}")
    return errors


def assert_valid(html: str) -> None:
    assert telegram_html_errors(html) == [], html


def squash(text: str) -> str:
    """Text with all whitespace removed: splitting may drop whitespace at split points (and
    with a part that would show nothing, the invisible characters in it)."""
    return "".join(char for char in text if not is_invisible(char))


# --- single constructs -------------------------------------------------------------------------


def test_bold_becomes_b() -> None:
    assert format_telegram_html("a **bold** word") == "a <b>bold</b> word"


def test_italic_becomes_i_with_either_marker() -> None:
    assert format_telegram_html("*one* and _two_") == "<i>one</i> and <i>two</i>"


def test_strikethrough_becomes_s() -> None:
    assert format_telegram_html("~~gone~~") == "<s>gone</s>"


def test_code_span_escapes_angle_brackets_and_ampersands() -> None:
    assert format_telegram_html("use `a<b && c>d`") == "use <code>a&lt;b &amp;&amp; c&gt;d</code>"


def test_fenced_code_keeps_its_language_and_escapes_content() -> None:
    html = format_telegram_html("```python\nif a < b:\n    pass\n```")
    assert html == '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>'


def test_fenced_code_without_language_is_a_plain_pre() -> None:
    assert format_telegram_html("```\nx = 1\n```") == "<pre>x = 1</pre>"


def test_language_names_are_sanitized_for_the_class_attribute() -> None:
    html = format_telegram_html('```c++"><b>x\ncode\n```')
    assert html.startswith('<pre><code class="language-c++bx">')
    assert_valid(html)


def test_https_link_is_kept_with_its_target_escaped() -> None:
    html = format_telegram_html('[docs](https://example.com/?a=1&b="2")')
    assert html == '<a href="https://example.com/?a=1&amp;b=%222%22">docs</a>'


@pytest.mark.parametrize(
    "target", ["https://x.org", "http://x.org", "tg://resolve?domain=x", "mailto:a@b.org"]
)
def test_links_with_allowed_schemes_are_kept(target: str) -> None:
    assert format_telegram_html(f"[go]({target})").startswith("<a href=")


@pytest.mark.parametrize(
    "target", ["javascript:alert(1)", "ftp://x.org/f", "/relative/path", "data:text/html,x"]
)
def test_links_with_other_schemes_become_plain_text(target: str) -> None:
    html = format_telegram_html(f"[go]({target})")
    assert "<a" not in html
    assert "go" in visible_text(html)


def test_autolinks_become_links() -> None:
    assert format_telegram_html("<https://x.org>") == '<a href="https://x.org">https://x.org</a>'


def test_code_inside_a_link_loses_the_code_style_because_telegram_forbids_it() -> None:
    assert format_telegram_html("[`x`](https://x.org)") == '<a href="https://x.org">x</a>'


def test_images_become_links_to_the_image() -> None:
    html = format_telegram_html("![a cat](https://x.org/cat.png)")
    assert html == '<a href="https://x.org/cat.png">a cat</a>'


def test_headings_become_bold_lines() -> None:
    assert format_telegram_html("# Title\n\ntext") == "<b>Title</b>\n\ntext"


def test_bold_inside_a_heading_is_not_nested_twice() -> None:
    assert format_telegram_html("## A **b** c") == "<b>A b c</b>"


def test_bullet_lists_get_bullets_and_nested_lists_are_indented() -> None:
    html = format_telegram_html("- one\n- two\n  - inner\n  - **bold**\n- three")
    assert html == "• one\n• two\n  • inner\n  • <b>bold</b>\n• three"


def test_ordered_lists_keep_their_numbers() -> None:
    assert format_telegram_html("3. c\n4. d") == "3. c\n4. d"


def test_ordered_list_nested_in_bullets_is_indented_by_the_bullet_width() -> None:
    assert format_telegram_html("- a\n  1. x\n  2. y") == "• a\n  1. x\n  2. y"


def test_blockquotes_become_blockquote() -> None:
    assert format_telegram_html("> wise *words*") == "<blockquote>wise <i>words</i></blockquote>"


def test_nested_blockquotes_are_flattened_with_a_marker() -> None:
    html = format_telegram_html("> outer\n>\n> > inner")
    assert html == "<blockquote>outer\n\n&gt; inner</blockquote>"


def test_tables_become_aligned_preformatted_text() -> None:
    html = format_telegram_html("| name | n |\n|---|--:|\n| apple | 3 |\n| fig | 12 |")
    assert html == "<pre>name  |  n\n------+---\napple |  3\nfig   | 12</pre>"


def test_horizontal_rule_becomes_a_line() -> None:
    assert format_telegram_html("a\n\n---\n\nb") == "a\n\n──────────\n\nb"


def test_raw_html_is_escaped_never_passed_through() -> None:
    html = format_telegram_html('<b onclick="x">hi</b>\n\n<script>alert(1)</script>')
    assert html == '&lt;b onclick="x"&gt;hi&lt;/b&gt;\n\n&lt;script&gt;alert(1)&lt;/script&gt;'
    assert_valid(html)


def test_markdown_entities_are_decoded_then_escaped_once() -> None:
    assert format_telegram_html("AT&amp;T &lt;3 &copy;") == "AT&amp;T &lt;3 ©"


def test_unclosed_bold_stays_literal() -> None:
    assert format_telegram_html("**never closed") == "**never closed"


def test_unclosed_fence_runs_to_the_end_and_is_closed() -> None:
    html = format_telegram_html("text\n\n```js\nlet a = 1;\n\nlet b = 2;")
    assert html == 'text\n\n<pre><code class="language-js">let a = 1;\n\nlet b = 2;</code></pre>'


@pytest.mark.parametrize(
    "markdown",
    ["**a _b** c_", "`unclosed", "[link](https://x.org", "> - ```\n> code", "***", "<", "&", "\\"],
)
def test_malformed_markdown_still_gives_valid_html(markdown: str) -> None:
    assert_valid(format_telegram_html(markdown))


def test_lone_surrogates_are_replaced_instead_of_breaking_the_transport() -> None:
    html = format_telegram_html("a\ud83db")
    assert html == "a\ufffdb"
    html.encode("utf-8")


@pytest.mark.parametrize("markdown", ["", "   ", "\n\n\t\n"])
def test_blank_input_gives_no_parts(markdown: str) -> None:
    assert format_telegram_html(markdown) == ""
    assert render_for_telegram(markdown) == []


# --- splitting ---------------------------------------------------------------------------------


def test_short_answers_are_one_part() -> None:
    assert render_for_telegram("hello **you**") == ["hello <b>you</b>"]


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("a😀é") == 4


def test_splits_prefer_paragraph_boundaries() -> None:
    first, second = "a" * 30, "b " * 10
    parts = render_for_telegram(f"{first}\n\n{second}", limit=40)
    assert [visible_text(part) for part in parts] == [first, second.strip()]


def test_splits_fall_back_to_line_then_word_boundaries() -> None:
    parts = split_telegram_html("one two\nthree four five", limit=12)
    assert parts == ["one two", "three four", "five"]


def test_a_word_longer_than_the_limit_is_hard_split() -> None:
    assert split_telegram_html("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_hard_splits_never_cut_an_emoji_in_half() -> None:
    parts = split_telegram_html("😀" * 5, limit=3)
    assert parts == ["😀"] * 5


def test_hard_splits_keep_combining_marks_with_their_letter() -> None:
    parts = split_telegram_html("abcde\u0301fg", limit=5)
    assert parts == ["abcd", "e\u0301fg"]


def test_entities_count_as_one_character_and_are_never_cut() -> None:
    parts = split_telegram_html("&amp;" * 10, limit=4)
    assert parts == ["&amp;" * 4, "&amp;" * 4, "&amp;" * 2]


def test_emoji_count_double_toward_the_limit() -> None:
    parts = render_for_telegram("😀" * 3000)
    assert [utf16_len(visible_text(part)) for part in parts] == [4096, 1904]


def test_captions_use_the_1024_limit() -> None:
    parts = render_for_telegram("word " * 500, limit=CAPTION_LIMIT)
    assert len(parts) == 3
    assert all(utf16_len(visible_text(part)) <= 1024 for part in parts)


def test_code_block_split_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"line_{n} = {n}" for n in range(40))
    parts = render_for_telegram(f"Intro\n\n```python\n{code}\n```\n\nOutro", limit=100)
    code_parts = [part for part in parts if "<pre>" in part or "<pre><code" in part]
    assert len(code_parts) > 2
    for part in code_parts:
        assert part.startswith('<pre><code class="language-python">')
        assert part.count("</code></pre>") == 1
        assert_valid(part)
    assert parts[0] == "Intro"
    assert parts[-1].endswith("</code></pre>\n\nOutro")


def test_indentation_inside_split_code_survives() -> None:
    code = "def f():\n" + "\n".join("    pass" for _ in range(10))
    parts = render_for_telegram(f"```\n{code}\n```", limit=30)
    assert all(visible_text(part).startswith(("    pass", "def f")) for part in parts)


def test_inline_formatting_across_a_split_is_closed_and_reopened() -> None:
    parts = render_for_telegram("**" + " ".join(["bold words"] * 10) + "**", limit=30)
    assert len(parts) > 1
    for part in parts:
        assert part.startswith("<b>")
        assert part.endswith("</b>")


def test_a_link_split_in_two_keeps_its_target_in_both_parts() -> None:
    parts = render_for_telegram("[" + "click here " * 5 + "](https://x.org)", limit=30)
    assert len(parts) == 2
    assert all(part.startswith('<a href="https://x.org">') for part in parts)


def test_limits_below_one_emoji_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_telegram_html("x", limit=1)


def test_a_megabyte_of_markdown_is_split_into_full_messages() -> None:
    paragraph = "Some **bold** text with `code` & <angle> brackets 😀. " * 20
    markdown = "\n\n".join([paragraph, "```py\n" + "x = 1\n" * 200 + "```"] * 450)
    assert len(markdown) > 1_000_000
    parts = render_for_telegram(markdown)
    assert all(utf16_len(visible_text(part)) <= MESSAGE_LIMIT for part in parts)
    total = utf16_len("".join(visible_text(part) for part in parts))
    assert len(parts) < total / MESSAGE_LIMIT * 1.5


def test_invalid_html_given_to_the_splitter_comes_out_valid() -> None:
    parts = split_telegram_html('<b><i>x</b> <div>y</div> <a href="javascript:1">z</a> a & b', 50)
    assert parts == ["<b><i>x</i></b> y z a &amp; b"]


# --- fallbacks and dialects --------------------------------------------------------------------


def test_plain_fallback_shows_text_and_link_targets() -> None:
    html = format_telegram_html("See [the docs](https://x.org) or <https://y.org>, `a<b`")
    assert html_to_plain(html) == "See the docs (https://x.org) or https://y.org, a<b"


def test_plain_text_splits_by_the_same_rules() -> None:
    assert split_plain_text("a <b> & c\n\nd", limit=9) == ["a <b> & c", "d"]


def test_pyrogram_dialect_puts_the_language_on_pre() -> None:
    html = format_telegram_html("```rust\nfn main() {}\n```")
    assert to_pyrogram_html(html) == '<pre language="rust">fn main() {}</pre>'


# --- properties --------------------------------------------------------------------------------

_FRAGMENTS = [
    "**", "*", "_", "__", "`", "```", "```py\n", "~~~\n", "\n", "\n\n", "> ", "- ", "1. ", "# ",
    "|", "| a | b |\n|---|---|\n", "---", "[a](https://x.org)", "[b](javascript:x)", "![i](tg://x)",
    "<b>", "</i>", "&amp;", "&", "<", ">", '"', "😀", "👨‍👩‍👧", "e\u0301", "中文", "    ", "\\",
]  # fmt: skip
markdown_text = st.lists(
    st.one_of(
        st.sampled_from(_FRAGMENTS),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
        st.text(alphabet="ab *_`<&\n😀", max_size=30),
    ),
    max_size=60,
).map("".join)
limits = st.sampled_from([MESSAGE_LIMIT, CAPTION_LIMIT, 50, 7, 2])


@settings(max_examples=300, deadline=None)
@given(markdown=markdown_text, limit=limits)
def test_every_part_is_valid_fits_the_limit_and_no_text_is_lost(markdown: str, limit: int) -> None:
    whole = format_telegram_html(markdown)
    assert_valid(whole)
    parts = render_for_telegram(markdown, limit=limit)
    for part in parts:
        assert_valid(part)
        shown = visible_text(part)
        assert 0 < utf16_len(shown) <= limit
        assert not is_invisible(shown)  # Telegram would refuse it as empty
    sent = "".join(visible_text(part) for part in parts)
    if visible_text(whole).strip() and is_invisible(visible_text(whole)):
        assert squash(sent) == squash(INVISIBLE_FALLBACK)  # nothing to show: say so
    else:
        assert squash(sent) == squash(visible_text(whole))


@settings(max_examples=100, deadline=None)
@given(
    language=st.sampled_from(["python", "js", "c++", "go"]),
    lines=st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=40), min_size=1),
    limit=st.sampled_from([20, 50, 200]),
)
def test_code_blocks_split_anywhere_keep_their_language(
    language: str, lines: list[str], limit: int
) -> None:
    body = "\n".join(line.replace("`", "'") for line in lines)
    parts = render_for_telegram(f"```{language}\n{body}\n```", limit=limit)
    if is_invisible(body):  # no code to show: no part at all, or the fallback that says so
        shown = "".join(visible_text(part) for part in parts)
        assert squash(shown) in ("", squash(INVISIBLE_FALLBACK))
        return
    for part in parts:
        assert part.startswith(f'<pre><code class="language-{language}">')
        assert part.endswith("</code></pre>")


@settings(max_examples=200, deadline=None)
@given(
    html=st.lists(
        st.one_of(
            st.sampled_from(
                ["<b>", "</b>", "<i>", "</i>", "<pre>", "</pre>", '<code class="language-x">',
                 "</code>", '<a href="https://x.org">', '<a href="nope:">', "</a>", "<blockquote>",
                 "</blockquote>", "<br>", "<b/>", "&amp;", "&lt;", "&#65;", "&bogus;", "\n\n"]
            ),
            st.text(alphabet="ab &<>\n😀", max_size=10),
        ),
        max_size=40,
    ).map("".join),
    limit=st.sampled_from([MESSAGE_LIMIT, 10, 3]),
)  # fmt: skip
def test_the_splitter_repairs_any_html_it_is_given(html: str, limit: int) -> None:
    for part in split_telegram_html(html, limit):
        assert_valid(part)
        assert utf16_len(visible_text(part)) <= limit


def test_pyrogram_dialect_never_overlaps_pre_and_code() -> None:
    assert to_pyrogram_html("<pre><code>x</code></pre>") == "<pre>x</pre>"
