"""``POST /api/v1/messages``: a message from an API client's end user, through the pipeline.

``chat_id`` and ``user_id`` live in the token's namespace: the identity and the chat are
stored as ``<token id>:<id>``, so two tokens never share a conversation, the token's access
rule covers all of them, and rate limits apply per end user. Answers produced after the
request (deferred ones) are read from the chat's history (``aisystem.api.chats``).

Retries are safe with an ``Idempotency-Key`` or a client ``message_id``
(``aisystem.api.idempotency`` says what a repeat gets).

A client that goes away does not stop its message: the pipeline runs in a task of its own,
shielded from the request's cancellation (Django cancels a view whose client disconnected),
so the answer is finished and stored either way, on the JSON path as on the streaming one.
The client reads it later from ``GET /api/v1/messages/{id}``, the chat's history, or by
repeating the request with its key or message id.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from ninja import Router, Status
from ninja.decorators import decorate_view
from ninja.params.functions import Header as HeaderParam

from aisystem.api.auth import TokenAuth
from aisystem.api.idempotency import (
    RETRY_AFTER_SECONDS,
    Answer,
    Run,
    api_message_plan,
    api_message_settle,
)
from aisystem.api.schemas import (
    ErrorOut,
    MessageIn,
    MessageOut,
    StoredMessageOut,
    ValidationErrorOut,
)
from aisystem.api.selectors import StoredMessage, api_message_for_token, namespaced
from aisystem.api.transport import ApiTransport, StreamEvent
from aisystem.models import ApiToken, ChatType, Transport
from pipeline.processor import shared_processor
from pipeline.types import InboundMessage, ProcessingResult

logger = logging.getLogger(__name__)
router = Router(tags=["messages"], auth=TokenAuth())

# Every message's pipeline task, until it ends: the event loop keeps only weak references to
# tasks, and one whose request went away has no one else holding it.
_RUNNING: set[asyncio.Task[Answer]] = set()
_plan = sync_to_async(api_message_plan)
_close_connections = sync_to_async(connections.close_all)
_settle = sync_to_async(api_message_settle)

# Visible ASCII, as the Idempotency-Key draft (draft-ietf-httpapi-idempotency-key-header)
# and every client library that sends one use: UUIDs, random strings.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
NOT_JSON = 'Send the message as JSON, with "Content-Type: application/json".'

_DESCRIPTION = """Runs the message through the pipeline on the `api` transport. With \
`Accept: text/event-stream` the reply streams as Server-Sent Events: `delta` (text to \
append), `reset` (the answer restarted; `text` is all of it so far), then `done` with the \
same body as the JSON response (or `error` if processing failed).

`deferred` means Claude could not answer now (overloaded, erroring or unreachable after \
every retry, or its circuit breaker open): `reply` says so, and the answer comes later as a \
new message in `GET /api/v1/chats/{chat_id}/messages`. If part of an answer had already \
streamed, a `reset` replaces it with that notice. `failed` is a request Claude refused as \
invalid; sending it again will not help.

**Retries.** Send an `Idempotency-Key` (unique per token, kept 24 hours) or a `message_id` \
(unique per chat) and a retry is never answered twice: a repeat of a finished request \
returns the stored result (header `Idempotent-Replayed: true`; a streamed repeat gets one \
`reset` with the whole reply, then `done`); a repeat while the first is still being \
answered gets 409 with `Retry-After`; the same key or id with a different message gets 422. \
If the first request's web process died, its message is answered by the worker's sweeper \
and a repeat then returns that answer.

**Disconnects.** A client that disconnects or times out does not stop its message: the \
answer is finished and stored. Fetch it with `GET /api/v1/messages/{id}`, the chat's \
history, or a repeat with the same key or `message_id`.

**Errors** are JSON with a `detail`: 400 unreadable JSON, 401 a missing or unknown token, \
409 a repeat of a request still running, 413 a body or text that is too large, 415 a body \
that is not JSON, 422 fields that fail validation (each with where and why)."""


def json_only(
    run: Callable[..., Awaitable[HttpResponseBase]],
) -> Callable[..., Awaitable[HttpResponseBase]]:
    """A 415 for a body that does not say it is JSON (``application/json`` or
    ``application/…+json``): without this, django-ninja parses any body (text/plain, none,
    form data) as JSON."""

    @functools.wraps(run)
    async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        kind = (request.content_type or "").lower()
        if kind != "application/json" and not (
            kind.startswith("application/") and kind.endswith("+json")
        ):
            return JsonResponse({"detail": NOT_JSON}, status=415)
        return await run(request, *args, **kwargs)

    return checked


def _inbound(token: ApiToken, payload: MessageIn, message_id: str) -> InboundMessage:
    return InboundMessage(
        transport=Transport.API,
        chat_id=namespaced(token.pk, payload.chat_id),
        chat_type=ChatType.API,
        message_id=message_id,
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
    response={
        200: MessageOut,
        400: ErrorOut,
        401: ErrorOut,
        409: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ValidationErrorOut,
    },
    summary="Send a message and get the assistant's reply",
    description=_DESCRIPTION,
    openapi_extra={
        "responses": {
            200: {
                "description": "The result (a JSON body), or its stream",
                "headers": {
                    "Idempotent-Replayed": {
                        "description": "`true` when this is the stored result of an earlier "
                        "request with the same key or message id.",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            409: {
                "description": "The first request with this key or message id is still "
                "being answered",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait before repeating the request.",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                },
            },
        }
    },
)
@decorate_view(json_only)
async def message_create(
    request: HttpRequest,
    response: HttpResponse,
    payload: MessageIn,
    idempotency_key: Annotated[
        str | None,
        HeaderParam(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Any unique string (a UUID, say), 1-255 visible ASCII characters: "
            "repeats of the request with it are answered once. Unique per token; kept 24 hours.",
        ),
    ] = None,
) -> Any:
    limit = settings.PIPELINE["MAX_INPUT_CHARS"]
    if len(payload.text) > limit:
        detail = f"text is too long: {len(payload.text):,} characters; the limit is {limit:,}."
        return Status(413, {"detail": detail})
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    streaming = "text/event-stream" in request.headers.get("Accept", "")
    plan = await _plan(
        token_id=token.pk, payload=payload, idempotency_key=idempotency_key, now=timezone.now()
    )
    if isinstance(plan, Answer):
        if streaming and plan.status == 200:
            return _replayed_stream(plan)
        return _answer(plan, response)
    # The pipeline runs in a thread (and database connection) of its own, below; the request's
    # thread waits for it doing nothing, so its connection is given back now, not held idle
    # for the whole answer: one connection per message in flight, not two.
    await _close_connections()
    queue: asyncio.Queue[StreamEvent] | None = asyncio.Queue() if streaming else None
    inbound = _inbound(token, payload, plan.transport_message_id)
    task = _start(_run(inbound, ApiTransport(queue), token_id=token.pk, payload=payload, run=plan))
    if queue is not None:
        return _event_stream(_events(task, queue))
    # If the client goes away, this await is cancelled, not the task: it finishes and stores
    # the answer (and the key's result) on its own.
    return _answer(await asyncio.shield(task), response)


def _start(work: Coroutine[Any, Any, Answer]) -> asyncio.Task[Answer]:
    """``work`` in a task that may outlive the request. It runs in a fresh context with a
    worker thread of its own (``ThreadSensitiveContext``, as Django gives each request): the
    request's thread is shut down when the request ends, and asgiref refuses to run
    anything more in it."""
    task = asyncio.get_running_loop().create_task(
        _in_own_thread(work), context=contextvars.Context()
    )
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    return task


async def _in_own_thread(work: Coroutine[Any, Any, Answer]) -> Answer:
    async with ThreadSensitiveContext():
        try:
            return await work
        finally:
            await _close_connections()


def _finished(task: asyncio.Task[Answer]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled():
        task.exception()  # logged by _run; retrieved here, so asyncio does not warn again


async def _run(
    inbound: InboundMessage,
    transport: ApiTransport,
    *,
    token_id: int,
    payload: MessageIn,
    run: Run,
) -> Answer:
    """The pipeline, then the answer stored under the key (if any)."""
    try:
        result = await shared_processor().process_message(inbound, transport)
        duplicate = result.status == "ignored" and result.reason == "duplicate"
        return await _settle(
            token_id=token_id, payload=payload, run=run, body=None if duplicate else _out(result)
        )
    except Exception:
        logger.exception("processing an API message failed")
        raise


def _answer(answer: Answer, response: HttpResponse) -> Status[dict[str, Any]]:
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    if answer.retry_after is not None:
        response["Retry-After"] = str(answer.retry_after)
    return Status(answer.status, answer.body)


def _event_stream(events: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _replayed_stream(answer: Answer) -> StreamingHttpResponse:
    """A streamed repeat of a finished request: the whole stored reply at once, then done."""

    async def events() -> AsyncIterator[str]:
        if answer.body.get("reply"):
            yield _sse("reset", {"text": answer.body["reply"]})
        yield _sse("done", answer.body)

    response = _event_stream(events())
    response["Idempotent-Replayed"] = "true"
    return response


async def _events(
    task: asyncio.Task[Answer], queue: asyncio.Queue[StreamEvent]
) -> AsyncIterator[str]:
    """The reply as it streams. A client that goes away closes this generator, not the task,
    which finishes on its own (``_RUNNING`` holds it)."""
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
    if task.cancelled() or task.exception() is not None:
        yield _sse("error", {"detail": "The message could not be processed."})
        return
    answer = task.result()
    if answer.status != 200:  # a concurrent repeat recorded the message first
        yield _sse("error", {**answer.body, "retry_after": RETRY_AFTER_SECONDS})
        return
    yield _sse("done", answer.body)


@router.get(
    "/messages/{message_id}",
    response={200: StoredMessageOut, 401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
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
