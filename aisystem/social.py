"""social-auth storage that keeps OAuth token payloads encrypted (IntegrationAccount)."""

from __future__ import annotations

from social_django.models import DjangoStorage

from aisystem.models import IntegrationAccount


class EncryptedDjangoStorage(DjangoStorage):
    user = IntegrationAccount
