"""The providers this installation knows, and those staff configured."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aisystem.integrations.base import Provider
from aisystem.integrations.github import GitHub
from aisystem.integrations.google import Google

PROVIDERS: Mapping[str, Provider] = MappingProxyType({"github": GitHub(), "google": Google()})


def providers_configured() -> list[Provider]:
    """The providers with a client id and secret, in the order above. The others are not
    offered anywhere: not in /connect, not on the sign-in page, no tools."""
    return [provider for provider in PROVIDERS.values() if provider.is_configured()]


def provider_get(name: str) -> Provider | None:
    """The configured provider called ``name`` (case-insensitive), or None."""
    provider = PROVIDERS.get(name.strip().lower())
    return provider if provider is not None and provider.is_configured() else None
