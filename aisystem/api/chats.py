"""``GET /api/v1/chats/{chat_id}/messages``: what a REST caller receives later.

An answer produced after its request (a message deferred while Claude was unavailable,
answered by the deferred job) has no HTTP response to ride on; the caller polls its chat's
history instead, paging with ``?after=<the last id it has>``. The chat is the one
``POST /api/v1/messages`` created for this token and ``chat_id``; any other token's chat of
the same name is a 404, exactly as an unknown one.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Query, Router, Status

from aisystem.api.auth import TokenAuth
from aisystem.api.schemas import ChatHistoryOut, ChatHistoryQuery, ErrorOut, ValidationErrorOut
from aisystem.api.selectors import ChatItem, api_chat_history
from aisystem.models import ApiToken

router = Router(tags=["chats"], auth=TokenAuth())
_history = sync_to_async(api_chat_history)


@router.get(
    # ``path:`` lets a chat id hold "/" (the POST accepts one); "/messages" still ends it.
    "/chats/{path:chat_id}/messages",
    response={200: ChatHistoryOut, 401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    summary="A chat's messages, both ways, oldest first",
    description=(
        "The messages of the chat you named `chat_id` in `POST /api/v1/messages`, yours "
        "(`in`) and the assistant's (`out`), oldest first. Answers produced later (a "
        "deferred message answered once Claude is back) appear here as new `out` messages: "
        "poll with `after` set to the last `id` you have. An unknown chat, or another "
        "token's, is a 404."
    ),
)
async def chat_messages(
    request: HttpRequest, chat_id: str, filters: Query[ChatHistoryQuery]
) -> Any:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    items = await _history(
        token_id=token.pk, chat_id=chat_id, after=filters.after, limit=filters.limit
    )
    if items is None:
        return Status(404, {"detail": "No such chat for this token."})
    return Status(200, {"items": [_item_out(item) for item in items]})


def _item_out(item: ChatItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "direction": item.direction,
        "text": item.text,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
    }
