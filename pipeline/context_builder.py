"""Pure helpers of the context builder: mention stripping, history trimming, and the text
that stands in for media, replies and the message itself.

The database-side builder loads rows and calls these; nothing here touches the database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from pipeline.types import Attachment, HistoryTurn, InboundMessage

REPLY_QUOTE_CHARS = 500
NAME_CHARS = 100  # file names, titles and other sender-chosen strings in descriptions

# --- Mentions ----------------------------------------------------------------------------


def strip_mention(text: str, assistant_username: str) -> str:
    """Remove every ``@assistant_username`` mention (case-insensitive, whole word, anywhere)
    and return the text stripped at both ends.

    A mention is not part of a longer word: ``@Bot`` is not found in ``@Bottle``,
    ``me@bot`` (an address) or ``/help@bot`` (a command). A comma or colon right after the
    mention goes with it ("@bot, hi" → "hi"). Where a mention sat between words one space
    is left; at a line's start or end nothing. Other lines keep their whitespace, so code
    in the message survives. Other people's mentions stay. No username → text unchanged.
    """
    username = assistant_username.strip().lstrip("@")
    if not username:
        return text
    pattern = re.compile(
        rf"[ \t]*(?<![\w@/])@{re.escape(username)}(?!\w)[,:]?[ \t]*", re.IGNORECASE
    )
    while True:  # removing one can expose another ("@bot@bot"): repeat until none is left
        stripped = pattern.sub(_mention_replacement, text)
        if stripped == text:
            return stripped.strip()
        text = stripped


def _mention_replacement(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    at_line_start = start == 0 or text[start - 1] in "\r\n"
    at_line_end = end == len(text) or text[end] in "\r\n"
    return "" if at_line_start or at_line_end else " "


# --- History -----------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens ``text`` costs: 0 for "", else at least 1.

    An estimate on purpose: counting exactly would take a tokenizer call per message, and
    the budget only has to keep requests comfortably inside the model's window. ASCII is
    counted at ~4 characters per token; other characters at ~2, because tokenizers spend
    more on non-Latin scripts and erring high keeps the budget safe.
    """
    if not text:
        return 0
    ascii_chars = sum(1 for char in text if char.isascii())
    other_chars = len(text) - ascii_chars
    return max(1, math.ceil(ascii_chars / 4 + other_chars / 2))


def trim_history(
    turns: Sequence[HistoryTurn], *, max_messages: int, max_tokens: int
) -> tuple[tuple[HistoryTurn, ...], int]:
    """Keep the most recent ``turns`` that fit both budgets; return (kept, dropped).

    ``turns`` are in chronological order; so are the kept ones. Claude needs turns that
    alternate and start with "user", so blank turns are left out, consecutive turns of one
    role are merged into one (joined by a blank line) *before* budgeting, and a leading
    assistant turn is dropped. The newest turns win: walking back from the end, a turn that
    would break either budget stops the walk (nothing older is kept, so there are no gaps).
    The kept turns never exceed ``max_messages`` turns nor ``max_tokens`` estimated tokens.
    ``dropped`` counts the non-blank input turns left out (blank ones carry nothing to
    miss, so they are not counted).
    """
    merged = _merge_same_role(turns)
    kept: list[tuple[HistoryTurn, int]] = []
    budget = max_tokens
    for turn, originals in reversed(merged):
        cost = estimate_tokens(turn.text)
        if len(kept) >= max_messages or cost > budget:
            break
        kept.append((turn, originals))
        budget -= cost
    kept.reverse()
    while kept and kept[0][0].role == "assistant":
        kept.pop(0)
    total = sum(originals for _, originals in merged)
    represented = sum(originals for _, originals in kept)
    return tuple(turn for turn, _ in kept), total - represented


def _merge_same_role(turns: Sequence[HistoryTurn]) -> list[tuple[HistoryTurn, int]]:
    """Non-blank turns with neighbours of one role merged; each with how many it merged."""
    merged: list[tuple[HistoryTurn, int]] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        if merged and merged[-1][0].role == turn.role:
            previous, count = merged[-1]
            merged[-1] = (HistoryTurn(turn.role, f"{previous.text}\n\n{turn.text}"), count + 1)
        else:
            merged.append((turn, 1))
    return merged


# --- Media, replies and the text for the model -------------------------------------------


def describe_media(message: InboundMessage) -> str:
    """One bracketed line per non-text part of ``message`` (attachments, location, contact,
    poll), e.g. ``[Photo, 1280x720, 240 KB]``; "" when it has none. Used as text for the
    model and as the stored message's text."""
    parts = [_describe_attachment(attachment) for attachment in message.attachments]
    if message.location is not None:
        loc = message.location
        where = ", ".join(one_line(part) for part in (loc.title, loc.address) if part.strip())
        coordinates = f"{loc.latitude:.5f}, {loc.longitude:.5f}"
        parts.append(f"[Location: {coordinates}{f' — {where}' if where else ''}]")
    if message.contact is not None:
        contact = message.contact
        fields = (f"{contact.first_name} {contact.last_name}", contact.phone_number)
        parts.append(f"[Contact: {', '.join(one_line(f) for f in fields if f.strip())}]")
    if message.poll is not None:
        options = ", ".join(f'"{one_line(option)}"' for option in message.poll.options)
        parts.append(f'[Poll: "{one_line(message.poll.question)}" — options: {options or "none"}]')
    return "\n".join(parts)


_ATTACHMENT_LABELS = {
    "photo": "Photo",
    "document": "Document",
    "voice": "Voice message",
    "audio": "Audio",
    "video": "Video",
    "video_note": "Video message",
    "animation": "Animation",
    "sticker": "Sticker",
}


def _describe_attachment(attachment: Attachment) -> str:
    label = _ATTACHMENT_LABELS[attachment.kind]
    if attachment.kind == "sticker":
        return f"[Sticker {attachment.emoji}]" if attachment.emoji else "[Sticker]"
    details = [one_line(attachment.file_name)]
    if attachment.width and attachment.height:
        details.append(f"{attachment.width}x{attachment.height}")
    if attachment.duration_seconds is not None:
        details.append(format_duration(attachment.duration_seconds))
    size = len(attachment.data) if attachment.data is not None else attachment.size
    if size is not None:
        details.append(format_size(size))
    shown = [detail for detail in details if detail]
    return f"[{label}{': ' if shown else ''}{', '.join(shown)}]"


def format_size(size: int) -> str:
    """``512 bytes``, ``240 KB``, ``1.5 MB`` (binary units, as file managers show them)."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def format_duration(seconds: float) -> str:
    """``0:42``, ``3:05``, ``1:02:03``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def reply_context(message: InboundMessage) -> str:
    """``In reply to <sender>: "<quoted text>"`` (the quote cut at 500 characters), or ""
    when ``message`` replies to nothing. A reply to the assistant names "your message"."""
    reply = message.reply_to
    if reply is None:
        return ""
    if reply.from_assistant:
        whom = "your earlier message"
    elif reply.sender_name.strip():
        whom = one_line(reply.sender_name)
    else:
        whom = "an earlier message"
    quote = reply.text.strip()
    if not quote:
        return f"In reply to {whom} (a message without text)"
    if len(quote) > REPLY_QUOTE_CHARS:
        quote = quote[: REPLY_QUOTE_CHARS - 1].rstrip() + "…"
    return f'In reply to {whom}: "{quote}"'


def compose_user_text(context_text: str, media_description: str, reply_ctx: str) -> str:
    """The text sent to Claude for this message: the reply context, the media description
    and the (mention-stripped) text, blank parts left out, separated by blank lines.
    "" when all three are blank; the caller then says what was sent instead."""
    parts = (reply_ctx.strip(), media_description.strip(), context_text.strip())
    return "\n\n".join(part for part in parts if part)


def one_line(text: str, limit: int = NAME_CHARS) -> str:
    """A sender-chosen string (file name, display name, title) fit for one line of a prompt:
    control characters and runs of whitespace become one space; cut at ``limit``
    characters (ending in "…"). Keeps such strings from posing as lines of their own."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
