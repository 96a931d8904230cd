"""What a provider's tool module declares: its reads, its writes, and how to describe them.

A provider module (``github``, ``google_calendar``) holds plain, synchronous functions over
its API client and declares them as one ``ProviderTools``; ``offer`` binds them to the
person who is asking (their account, their chat), and ``pending`` runs a write once the
person confirmed it. Keeping the modules free of per-message state is what lets one
declaration serve every person without any of them seeing another's account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipeline.types import ToolSpec


@dataclass(frozen=True)
class Proposal:
    """A change checked and described, not done. ``arguments`` is JSON-safe (it is stored
    and handed to ``WriteTool.execute`` after the confirmation); ``summary`` says what would
    happen, in the person's words ("Create issue “Fix login” in acme/web")."""

    arguments: Mapping[str, object]
    summary: str


@dataclass(frozen=True)
class ReadTool:
    """A tool that only reads. ``run(account_id, arguments)`` is synchronous (it runs in a
    worker thread), returns text for Claude, and raises ``ToolInputError`` for bad input and
    ``IntegrationError`` when the provider fails."""

    spec: ToolSpec
    run: Callable[[int, Mapping[str, object]], str]


@dataclass(frozen=True)
class WriteTool:
    """A tool that changes something, so it waits for the person.

    ``prepare(arguments)`` checks the input without any network call and returns the
    ``Proposal`` (or raises ``ToolInputError``); ``execute(account_id, arguments)`` does
    the change after the confirmation and returns what the chat is told, with a link to
    what was created; it raises ``IntegrationError`` when the provider fails.
    """

    spec: ToolSpec
    prepare: Callable[[Mapping[str, object]], Proposal]
    execute: Callable[[int, Mapping[str, object]], str]


@dataclass(frozen=True)
class ProviderTools:
    """One provider's tools. ``provider`` is the name in ``aisystem.integrations.registry``
    (what people type after /connect); ``guidance`` is a sentence for the system prompt
    when the person has it connected."""

    provider: str
    label: str
    reads: tuple[ReadTool, ...]
    writes: tuple[WriteTool, ...]
    guidance: str = ""

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(tool.spec.name for tool in self.reads) + tuple(
            tool.spec.name for tool in self.writes
        )
