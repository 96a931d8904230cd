"""What every provider module defines."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from social_core.backends.base import BaseAuth
from social_django.utils import load_backend, load_strategy


class Provider(ABC):
    """One OAuth provider people can connect.

    ``name`` is what people type (``/connect github``) and social-auth's backend name;
    ``label`` is what they read. A provider is offered only when ``is_configured()``.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    backend: ClassVar[type[BaseAuth[Any]]]
    scopes: ClassVar[tuple[str, ...]]
    # The scopes a person reads on the connect page, in plain words.
    scope_summary: ClassVar[str]

    def config(self) -> dict[str, str]:
        return dict(settings.INTEGRATIONS.get(self.name, {}))

    def is_configured(self) -> bool:
        config = self.config()
        return bool(config.get("CLIENT_ID") and config.get("CLIENT_SECRET"))

    @abstractmethod
    def revoke(self, extra_data: dict[str, Any]) -> None:
        """Revoke the grant at the provider. Raises ``IntegrationError`` when it could not."""

    @abstractmethod
    def account_login(self, response: dict[str, Any], details: dict[str, Any]) -> str:
        """The name the provider shows for this account (``@octocat``, ``ann@example.com``)."""

    def verified_email(self, response: dict[str, Any]) -> str:
        """The account's e-mail address when the provider says it is verified, else "".
        Only such an address may associate a sign-in with an existing user."""
        return ""


def expiry_from(data: dict[str, Any], now: datetime | None = None) -> datetime | None:
    """When a token answer's access token expires (``expires_in`` seconds, as OAuth gives it),
    or None when it does not say."""
    seconds = data.get("expires_in") or data.get("expires")
    try:
        value = int(seconds) if seconds is not None else None
    except (TypeError, ValueError):
        return None
    if value is None or value <= 0:
        return None
    return (now or timezone.now()) + timedelta(seconds=value)


def social_backend(
    name: str, request: HttpRequest | None = None, *, redirect_uri: str | None = None
) -> BaseAuth[Any]:
    """social-auth's backend ``name`` with our strategy (for a request, or none for jobs)."""
    strategy = load_strategy(request)  # type: ignore[no-untyped-call]
    backend: BaseAuth[Any] = load_backend(strategy, name, redirect_uri)  # type: ignore[no-untyped-call]
    return backend
