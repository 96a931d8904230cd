"""``GET /api/v1/users/{user_id}/export``: an end user's data as a JSON file (``/export``).

On the REST API, ``/export`` answers with this address rather than the file: a reply is
stored and replayed as text (the chat's history, an idempotent repeat), and a document of up
to 20 MB has no place there. The user is the one ``POST /api/v1/messages`` knows for this
token and ``user_id``; any other token's user of the same name is a 404, exactly as an
unknown one. The document is ``aisystem.services.data_export``'s, as every transport gets it.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from aisystem.api.auth import TokenAuth
from aisystem.api.schemas import ErrorOut
from aisystem.api.selectors import namespaced
from aisystem.models import ApiToken, Identity, Transport
from aisystem.services.data_export import EXPORT_MIME_TYPE, Export, identity_export

router = Router(tags=["people"], auth=TokenAuth())


def _export(*, token_id: int, user_id: str) -> Export | None:
    """The user's document, or None if this token has no such user. Reads a whole history:
    run in a thread of its own, whose connections are closed when done."""
    try:
        identity_id = (
            Identity.objects.filter(
                transport=Transport.API, external_id=namespaced(token_id, user_id)
            )
            .values_list("pk", flat=True)
            .first()
        )
        return None if identity_id is None else identity_export(identity_id=identity_id)
    finally:
        connections.close_all()


_export_async = sync_to_async(_export, thread_sensitive=False)


@router.get(
    # ``path:`` lets a user id hold "/" (the POST accepts one); "/export" still ends it.
    "/users/{path:user_id}/export",
    response={200: Any, 401: ErrorOut, 404: ErrorOut},
    summary="Everything kept about one of your users, as a JSON file",
    description=(
        "What `/export` sends on the other transports, for the `user_id` you named in "
        "`POST /api/v1/messages`: the identity, chats, conversations, messages in and out, "
        "reminders, connected accounts (never their tokens) and daily usage. At most 20 MB: "
        "a longer history keeps its newest messages (`messages_included` of "
        "`messages_total`). An unknown user, or another token's, is a 404."
    ),
    openapi_extra={
        "responses": {200: {"content": {EXPORT_MIME_TYPE: {"schema": {"type": "object"}}}}}
    },
)
async def user_export(request: HttpRequest, user_id: str) -> Any:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    export = await _export_async(token_id=token.pk, user_id=user_id)
    if export is None:
        return Status(404, {"detail": "No such user for this token."})
    response = HttpResponse(export.data, content_type=f"{EXPORT_MIME_TYPE}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    return response
