"""Slash commands: the table of names, parsing ``/cmd@Bot args``, and the help text.

Only recognising and describing commands lives here; executing them happens elsewhere.
Everything is pure: plain strings in, plain values out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

COMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "start": "Say hello and see what I can do",
        "help": "Show this list of commands",
        "new": "Start a fresh conversation (I forget the earlier messages)",
        "workspace": "Show your workspace, or switch to another one by name",
        "usage": "See how much you have used today",
        "status": "Check whether everything is running",
        "whoami": "Show who I think you are",
        "connect": "Connect your GitHub or Google account, or see what you can connect",
        "connections": "List your connected accounts",
        "disconnect": "Disconnect an account and revoke my access to it",
        "confirm": "Do the change I proposed and you are asked to confirm",
        "cancel": "Stop the answer I'm writing, or cancel the change I proposed",
        "remind": "Remind you of something later, or answer a prompt on a schedule",
        "reminders": "List your reminders, or cancel one",
        "timezone": "Show or set your time zone (reminders use it)",
        "bg": "Work on a task in the background and send the answer when it is ready",
        "export": "Send you everything I keep about you, as a JSON file",
        "forget": "Delete your messages and what I know about you (asks first)",
    }
)

# Shown after the command name in the help text.
_ARGUMENT_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "workspace": "[name]",
        "connect": "[provider]",
        "disconnect": "provider",
        "remind": "in 10m | at YYYY-MM-DD HH:MM | every weekday HH:MM …",
        "reminders": "[cancel N]",
        "timezone": "[Area/City]",
        "bg": "task",
    }
)

# Telegram's rules: a command is 1-32 ASCII letters, digits or underscores and starts with a
# letter; a bot username is 5-32 of the same (we accept 1-64 to be lenient). The command ends
# at whitespace or at the end of the text, so "/usr/bin" or "/3pm" are not commands.
_COMMAND_RE = re.compile(
    r"/(?P<name>[A-Za-z][A-Za-z0-9_]{0,31})(?:@(?P<bot>[A-Za-z0-9_]{0,64}))?(?=\s|$)(?P<args>.*)",
    re.DOTALL,
)


@dataclass(frozen=True)
class ParsedCommand:
    """A recognised ``/command``. ``name`` is lowercase without the slash (it may not be in
    ``COMMANDS``: the executor answers unknown names). ``addressed_to_other`` is True when the
    command names another bot (``/help@OtherBot``): no one but that bot should answer."""

    name: str
    args: str
    addressed_to_other: bool = False


def parse_command(text: str, assistant_username: str = "") -> ParsedCommand | None:
    """Return the command ``text`` starts with (after leading whitespace), or None.

    ``/`` alone, ``/123``, ``/3pm`` and ``/usr/bin`` are not commands. ``/cmd@Bot`` is
    addressed to another bot unless ``Bot`` equals ``assistant_username`` (case-insensitive,
    a leading ``@`` ignored). When our own username is unknown, any named bot counts as
    another bot: answering a command meant for someone else is worse than staying silent.
    """
    match = _COMMAND_RE.match(text.lstrip())
    if match is None:
        return None
    bot = (match.group("bot") or "").lower()
    ours = assistant_username.lstrip("@").lower()
    return ParsedCommand(
        name=match.group("name").lower(),
        args=match.group("args").strip(),
        addressed_to_other=bool(bot) and bot != ours,
    )


def help_text(workspaces: Sequence[str] = ()) -> str:
    """The list of commands as Markdown, plus the workspaces one can switch to (if any)."""
    lines = ["Here's what I understand:", ""]
    for name, description in COMMANDS.items():
        hint = _ARGUMENT_HINTS.get(name, "")
        usage = f"/{name} {hint}" if hint else f"/{name}"
        # Plain, not a code span: Telegram makes a bare /command tappable.
        lines.append(f"{usage} — {description}")
    names = [_code_span(name) for name in workspaces if name.strip()]
    if names:
        lines += ["", f"Workspaces: {', '.join(names)}"]
    lines += ["", "Anything else you send me, I'll answer as a question."]
    return "\n".join(lines)


def _code_span(text: str) -> str:
    """``text`` as an inline code span; backticks would end the span, so they are dropped."""
    return f"`{text.replace('`', '').strip()}`"
