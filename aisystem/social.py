"""social-auth storage that keeps OAuth token payloads encrypted (IntegrationAccount)."""

from __future__ import annotations

from social_django.models import DjangoStorage

from aisystem.models import IntegrationAccount


class EncryptedDjangoStorage(DjangoStorage):
    # social-auth's documented way to swap the account model; its types infer ``user`` from
    # DjangoStorage's own UserSocialAuth rather than BaseDjangoStorage's DjangoUserMixin, which
    # IntegrationAccount (an AbstractUserSocialAuth) is.
    user = IntegrationAccount  # type: ignore[assignment]
