"""Markdown (as Claude writes it) to Telegram HTML, through markdown-it-py's syntax tree.

The parser is CommonMark with tables and strikethrough, raw HTML disabled: a ``<b>`` in the
Markdown is text and comes out escaped. Telegram has no block elements besides ``pre`` and
``blockquote``, so blocks become text: headings a bold line, list items lines prefixed with
"• " or "1. " (nested lists indented), tables a ``pre`` block with aligned columns, a horizontal
rule a line of box-drawing characters, images a link to the image. Blocks are separated by a
blank line. The output of ``render_markdown_html`` is balanced but not yet normalized; the
public functions pass it through ``TelegramDocument`` (see ``document.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from .document import escape_attribute, escape_text, is_allowed_href, sanitize_language

_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_INLINE_TAGS = {"strong": "b", "em": "i", "s": "s"}
HORIZONTAL_RULE = "─" * 10


def render_markdown_html(markdown: str) -> str:
    """Render ``markdown`` to Telegram-dialect HTML; blocks are joined by a blank line."""
    tree = SyntaxTreeNode(_PARSER.parse(_repair_surrogates(markdown)))
    return _join_blocks(tree.children, in_quote=False, separator="\n\n")


def _repair_surrogates(text: str) -> str:
    """Pair up surrogate halves and replace lone ones, which no UTF-8 transport can carry."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _join_blocks(nodes: Sequence[SyntaxTreeNode], *, in_quote: bool, separator: str) -> str:
    rendered = (_block(node, in_quote=in_quote) for node in nodes)
    return separator.join(block for block in rendered if block)


def _block(node: SyntaxTreeNode, *, in_quote: bool) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline_children(node)
    if kind == "heading":
        return _wrap("b", _inline_children(node))
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, in_quote=in_quote)
    if kind == "blockquote":
        return _blockquote(node, in_quote=in_quote)
    if kind in ("fence", "code_block"):
        return _code_block(node.content, node.info)
    if kind == "hr":
        return HORIZONTAL_RULE
    if kind == "table":
        return _table(node)
    if node.children:
        return _join_blocks(node.children, in_quote=in_quote, separator="\n\n")
    return escape_text(node.content.strip("\n"))  # html_block and anything unforeseen


def _blockquote(node: SyntaxTreeNode, *, in_quote: bool) -> str:
    inner = _join_blocks(node.children, in_quote=True, separator="\n\n")
    if in_quote:
        # Telegram quotes cannot nest; a nested quote keeps Markdown's marker instead.
        return _prefix_lines(inner, "&gt; ", "&gt; ")
    return _wrap("blockquote", inner)


def _list(node: SyntaxTreeNode, *, in_quote: bool) -> str:
    tight = all(
        child.hidden
        for item in node.children
        for child in item.children
        if child.type == "paragraph"
    )
    separator = "\n" if tight else "\n\n"
    number = int(str(node.attrs.get("start", 1)))
    items: list[str] = []
    for item in node.children:
        if node.type == "ordered_list":
            marker = f"{number}{node.markup or '.'} "
            number += 1
        else:
            marker = "• "
        body = _join_blocks(item.children, in_quote=in_quote, separator=separator)
        items.append(_prefix_lines(body, marker, " " * len(marker)))
    return separator.join(items)


def _prefix_lines(html: str, first: str, rest: str) -> str:
    """Prefix the first line with ``first`` and other non-blank lines with ``rest``.

    Safe on our HTML: no tag or entity we emit contains a newline."""
    lines = html.split("\n")
    prefixed = [first + lines[0]]
    prefixed.extend(rest + line if line else line for line in lines[1:])
    return "\n".join(prefixed)


def _code_block(content: str, info: str) -> str:
    code = content.rstrip("\n")
    if not code.strip():
        return ""
    language = sanitize_language(info)
    if language:
        return f'<pre><code class="language-{language}">{escape_text(code)}</code></pre>'
    return f"<pre>{escape_text(code)}</pre>"


def _table(node: SyntaxTreeNode) -> str:
    """A table as aligned plain-text columns in a ``pre`` block (Telegram has no tables)."""
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in node.children:
        for row_node in section.children:
            rows.append([_plain_inline(cell.children) for cell in row_node.children])
            if not aligns:
                aligns = [str(cell.attrs.get("style", "")) for cell in row_node.children]
    width_count = max((len(row) for row in rows), default=0)
    for row in rows:
        row.extend([""] * (width_count - len(row)))
    widths = [max(len(row[col]) for row in rows) for col in range(width_count)]
    lines = [" | ".join(_align(cell, widths[i], aligns, i) for i, cell in enumerate(rows[0]))]
    lines.append("-+-".join("-" * width for width in widths))
    lines.extend(
        " | ".join(_align(cell, widths[i], aligns, i) for i, cell in enumerate(row))
        for row in rows[1:]
    )
    text = "\n".join(line.rstrip() for line in lines)
    return f"<pre>{escape_text(text)}</pre>" if text.strip(" -+\n") else ""


def _align(cell: str, width: int, aligns: list[str], column: int) -> str:
    style = aligns[column] if column < len(aligns) else ""
    if "right" in style:
        return cell.rjust(width)
    if "center" in style:
        return cell.center(width)
    return cell.ljust(width)


def _inline_children(node: SyntaxTreeNode) -> str:
    return "".join(_inline(child.children, in_link=False) for child in node.children)


def _inline(nodes: Sequence[SyntaxTreeNode], *, in_link: bool) -> str:
    return "".join(_inline_node(node, in_link=in_link) for node in nodes)


def _inline_node(node: SyntaxTreeNode, *, in_link: bool) -> str:
    kind = node.type
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "code_inline":
        # Telegram forbids code inside a link; the text stays, the code style goes.
        return escape_text(node.content) if in_link else _wrap("code", escape_text(node.content))
    if kind in _INLINE_TAGS:
        return _wrap(_INLINE_TAGS[kind], _inline(node.children, in_link=in_link))
    if kind == "link":
        return _link(str(node.attrs.get("href", "")), _inline(node.children, in_link=True), in_link)
    if kind == "image":
        source = str(node.attrs.get("src", ""))
        label = _plain_inline(node.children) or source
        return _link(source, escape_text(label), in_link)
    if node.children:
        return _inline(node.children, in_link=in_link)
    return escape_text(node.content)  # text, text_special, html_inline (escaped, never raw)


def _link(href: str, inner: str, in_link: bool) -> str:
    if in_link or not inner or not is_allowed_href(href):
        return inner
    return f'<a href="{escape_attribute(href)}">{inner}</a>'


def _plain_inline(nodes: Sequence[SyntaxTreeNode]) -> str:
    """The text of inline nodes without formatting (for table cells and image labels)."""
    parts: list[str] = []
    for node in nodes:
        if node.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif node.children:
            parts.append(_plain_inline(node.children))
        else:
            parts.append(node.content)
    return "".join(parts)


def _wrap(tag: str, inner: str) -> str:
    return f"<{tag}>{inner}</{tag}>" if inner else ""
