"""social-auth's storage (token payloads encrypted, in IntegrationAccount) and strategy (links
and callback addresses from AISYSTEM_PUBLIC_URL)."""

from __future__ import annotations

from social_django.models import DjangoStorage
from social_django.strategy import DjangoStrategy

from aisystem.integrations.links import public_url
from aisystem.models import IntegrationAccount


class EncryptedDjangoStorage(DjangoStorage):
    # social-auth's documented way to swap the account model; its types infer ``user`` from
    # DjangoStorage's own UserSocialAuth rather than BaseDjangoStorage's DjangoUserMixin, which
    # IntegrationAccount (an AbstractUserSocialAuth) is.
    user = IntegrationAccount  # type: ignore[assignment]


class PublicUrlStrategy(DjangoStrategy):
    """Absolute addresses (the OAuth ``redirect_uri`` above all) from ``AISYSTEM_PUBLIC_URL``
    rather than from the request's Host header: behind a proxy, or on loopback, the callback
    registered at the provider is the public one, and a forged Host cannot change it."""

    def build_absolute_uri(self, path: str | None = None) -> str:
        return public_url(path or "/")
