from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja.security import HttpBearer

from aisystem.models import ApiToken
from aisystem.services.tokens import api_token_authenticate


class TokenAuth(HttpBearer):
    """``Authorization: Bearer ais_…``: a usable (not revoked, not expired) API token."""

    is_async = True  # ninja awaits what __call__ returns

    async def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return await sync_to_async(api_token_authenticate)(token.strip())
