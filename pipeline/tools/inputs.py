"""Checking what Claude passed to a tool, and shaping what goes back to it.

Every checker raises ``ToolInputError`` with a message Claude can act on ("repo must be
owner/name, e.g. octocat/hello-world"), never a traceback: the input is Claude's guess at a
JSON schema, so anything may arrive, including the wrong type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from pipeline.tools.registry import ToolInputError

# GitHub's rules: an owner is 1-39 letters, digits or hyphens; a repository name 1-100
# letters, digits, ".", "-" or "_" (but not "." or "..").
_REPO_RE = re.compile(
    r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100})"
)


def text_arg(
    arguments: Mapping[str, object],
    name: str,
    *,
    required: bool = True,
    max_length: int = 1000,
    one_line: bool = False,
) -> str:
    """A string argument, stripped; "" when it is optional and absent."""
    value = arguments.get(name)
    if value is None or value == "":
        if required:
            raise ToolInputError(f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise ToolInputError(f"{name} must be a string.")
    value = value.strip()
    if required and not value:
        raise ToolInputError(f"{name} must not be blank.")
    if one_line and ("\n" in value or "\r" in value):
        raise ToolInputError(f"{name} must be a single line.")
    if len(value) > max_length:
        raise ToolInputError(f"{name} is longer than {max_length} characters.")
    return value


def int_arg(
    arguments: Mapping[str, object],
    name: str,
    *,
    default: int | None = None,
    minimum: int = 1,
    maximum: int = 100,
) -> int:
    """An integer argument within [minimum, maximum]; ``default`` when absent (required if
    None). A string of digits is accepted: models sometimes quote numbers."""
    value = arguments.get(name)
    if value is None:
        if default is None:
            raise ToolInputError(f"{name} is required.")
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolInputError(f"{name} must be a whole number.")
    if not minimum <= value <= maximum:
        raise ToolInputError(f"{name} must be between {minimum} and {maximum}.")
    return value


def choice_arg(
    arguments: Mapping[str, object], name: str, choices: Sequence[str], *, default: str
) -> str:
    value = arguments.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ToolInputError(f"{name} must be one of: {', '.join(choices)}.")
    return value.strip().lower()


def repo_arg(arguments: Mapping[str, object], name: str = "repo") -> str:
    """A GitHub repository as ``owner/name``."""
    value = arguments.get(name)
    example = f"{name} must be owner/name, e.g. octocat/hello-world"
    if not isinstance(value, str) or not value.strip():
        raise ToolInputError(f"{example}.")
    repo = value.strip().removeprefix("https://github.com/").strip("/")
    match = _REPO_RE.fullmatch(repo)
    if match is None or match.group("name") in (".", ".."):
        raise ToolInputError(f"{example}; got {value.strip()[:100]!r}.")
    return repo


def datetime_arg(arguments: Mapping[str, object], name: str) -> datetime:
    """A required ISO 8601 date-time with a UTC offset (``2025-03-01T10:00:00+01:00`` or
    ``…Z``). A time without an offset is refused: guessing the person's time zone is how an
    event lands an hour off."""
    value = optional_datetime_arg(arguments, name)
    if value is None:
        raise ToolInputError(f"{name} is required (ISO 8601 with a UTC offset).")
    return value


def optional_datetime_arg(arguments: Mapping[str, object], name: str) -> datetime | None:
    """Like ``datetime_arg``, but None when absent."""
    value = arguments.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ToolInputError(f"{name} must be an ISO 8601 string.")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ToolInputError(
            f"{name} must be ISO 8601, e.g. 2025-03-01T10:00:00+01:00; got {value[:60]!r}."
        ) from None
    if parsed.tzinfo is None:
        raise ToolInputError(
            f"{name} needs a UTC offset (e.g. +01:00 or Z): I don't guess time zones."
        )
    return parsed


def compact(data: object) -> str:
    """JSON without spaces: the cheapest form for Claude to read back."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def shorten(text: object, limit: int) -> str:
    """``text`` as a string of at most ``limit`` characters (an ellipsis when cut)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def one_line(text: str, limit: int = 120) -> str:
    """``text`` on one line (whitespace runs collapsed), for a summary the person reads."""
    return shorten(" ".join(text.split()), limit)
