"""``POST /api/v1/messages``: a message from an API client's end user, through the pipeline.

``chat_id`` and ``user_id`` live in the token's namespace: the identity and the chat are
stored as ``<token id>:<id>``, so two tokens never share a conversation, the token's access
rule covers all of them, and rate limits apply per end user. Answers produced after the
request (deferred ones) are read from the chat's history (``aisystem.api.chats``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Router, Status

from aisystem.api.auth import TokenAuth
from aisystem.api.schemas import ErrorOut, MessageIn, MessageOut, StoredMessageOut
from aisystem.api.selectors import StoredMessage, api_message_for_token, namespaced
from aisystem.api.transport import ApiTransport, StreamEvent
from aisystem.models import ApiToken, ChatType, Transport
from pipeline.processor import shared_processor
from pipeline.types import InboundMessage, ProcessingResult

logger = logging.getLogger(__name__)
router = Router(tags=["messages"], auth=TokenAuth())

# Streams whose client went away keep running to the end (the answer is stored and can be
# fetched by id); this keeps a reference so the task is not garbage-collected meanwhile.
_ORPHANS: set[asyncio.Task[ProcessingResult]] = set()


def _inbound(token: ApiToken, payload: MessageIn) -> InboundMessage:
    return InboundMessage(
        transport=Transport.API,
        chat_id=namespaced(token.pk, payload.chat_id),
        chat_type=ChatType.API,
        message_id=uuid.uuid4().hex,
        sender_id=namespaced(token.pk, payload.user_id),
        sender_name=payload.user_id,
        chat_title=payload.chat_id,
        sent_at=timezone.now(),
        text=payload.text,
        api_token_id=token.pk,
    )


def _out(result: ProcessingResult) -> dict[str, Any]:
    status = "rejected" if result.status == "ignored" else result.status
    return {
        "status": status,
        "reply": result.reply,
        "message_id": result.message_id,
        "timings_ms": dict(result.timings_ms),
        "reason": result.reason,
    }


@router.post(
    "/messages",
    response={200: MessageOut, 401: ErrorOut, 413: ErrorOut},
    summary="Send a message and get the assistant's reply",
    description=(
        "Runs the message through the pipeline on the `api` transport. With "
        "`Accept: text/event-stream` the reply streams as Server-Sent Events: `delta` "
        "(text to append), `reset` (the answer restarted; `text` is all of it so far), then "
        "`done` with the same body as the JSON response.\n\n"
        "`deferred` means Claude could not answer now (overloaded, erroring or unreachable "
        "after every retry, or its circuit breaker open): `reply` says so, and the answer "
        "comes later as a new message in `GET /api/v1/chats/{chat_id}/messages`. If part of "
        "an answer had already streamed, a `reset` replaces it with that notice. `failed` "
        "is a request Claude refused as invalid; sending it again will not help."
    ),
)
async def message_create(request: HttpRequest, payload: MessageIn) -> Any:
    limit = settings.PIPELINE["MAX_INPUT_CHARS"]
    if len(payload.text) > limit:
        detail = f"text is too long: {len(payload.text):,} characters; the limit is {limit:,}."
        return Status(413, {"detail": detail})
    inbound = _inbound(request.auth, payload)  # type: ignore[attr-defined]
    if "text/event-stream" in request.headers.get("Accept", ""):
        return _event_stream(inbound)
    result = await shared_processor().process_message(inbound, ApiTransport())
    return Status(200, _out(result))


def _event_stream(inbound: InboundMessage) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_events(inbound), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(inbound: InboundMessage) -> AsyncIterator[str]:
    queue: asyncio.Queue[StreamEvent] = asyncio.Queue()
    task = asyncio.create_task(shared_processor().process_message(inbound, ApiTransport(queue)))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            item = getter.result()
            yield _sse(item.event, {"text": item.text})
        while not queue.empty():
            item = queue.get_nowait()
            yield _sse(item.event, {"text": item.text})
        try:
            result = task.result()
        except Exception:
            logger.exception("processing a streamed API message failed")
            yield _sse("error", {"detail": "The message could not be processed."})
            return
        yield _sse("done", _out(result))
    finally:
        if not task.done():
            _ORPHANS.add(task)
            task.add_done_callback(_ORPHANS.discard)


@router.get(
    "/messages/{message_id}",
    response={200: StoredMessageOut, 401: ErrorOut, 404: ErrorOut},
    summary="A message sent with this token: its status and reply",
)
async def message_detail(request: HttpRequest, message_id: int) -> Any:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    found = await sync_to_async(api_message_for_token)(token_id=token.pk, message_id=message_id)
    if found is None:
        return Status(404, {"detail": "No such message for this token."})
    return Status(200, _stored_out(found))


def _stored_out(found: StoredMessage) -> dict[str, Any]:
    return {
        "message_id": found.message_id,
        "status": found.status,
        "reason": found.reason,
        "text": found.text,
        "reply": found.reply,
        "created_at": found.created_at.isoformat(),
    }
