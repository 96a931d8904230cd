"""The REST API (django-ninja): ``/api/v1/…``, documented at ``/api/docs``.

Errors are JSON ``{"detail": …}`` with a 4xx status: 400 unreadable JSON, 401 a missing or
unknown token, 409 a repeat of a request still being answered (with ``Retry-After``), 413 a
body or text that is too large, 415 a body that is not JSON, 422 fields that fail validation
(``detail`` lists them) or a retry id reused for another message. The OpenAPI document states
each of them, and the character rules of the fields as patterns; ``tests/api/test_schema.py``
holds the API to it with schemathesis.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from aisystem.api import chats, export, health, messages

api = NinjaAPI(
    title="aisystem",
    version="1",
    description="Talk to the assistant from your own software.",
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("/v1", messages.router)
api.add_router("/v1", chats.router)
api.add_router("/v1", export.router)
api.add_router("/v1", health.router)


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)
