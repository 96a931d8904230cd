"""Which tools each provider brings: the one mapping provider name → ``ProviderTools``.

Adding a provider's tools is one module in this package declaring a ``ProviderTools`` and
one entry below; the key must be the provider's name in
``aisystem.integrations.registry.PROVIDERS``. A provider staff did not configure, or that
the person has not connected, brings nothing (``offer.tools_for`` decides that per message).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pipeline.tools.actions import ProviderTools, WriteTool
from pipeline.tools.github import TOOLS as GITHUB_TOOLS
from pipeline.tools.google_calendar import TOOLS as GOOGLE_CALENDAR_TOOLS

PROVIDER_TOOLS: Mapping[str, ProviderTools] = MappingProxyType(
    {tools.provider: tools for tools in (GITHUB_TOOLS, GOOGLE_CALENDAR_TOOLS)}
)


def write_tool(name: str) -> tuple[ProviderTools, WriteTool] | None:
    """The write tool called ``name`` and its provider, or None (no such write)."""
    for provider in PROVIDER_TOOLS.values():
        for tool in provider.writes:
            if tool.spec.name == name:
                return provider, tool
    return None
