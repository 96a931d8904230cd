"""Whether a ``POST /api/v1/messages`` runs the pipeline, or is answered from what is stored.

A message is identified by its client's ``message_id`` (the dedup key of the inbound message,
in the token's chat) and, with an ``Idempotency-Key``, by that key, which stands for one
message id (the client's, or one drawn when the key is first claimed). So a retry, with
either, never records a second inbound message, and its answer is:

* the stored response of the key's first request, once it has one (a deferred message's is
  not stored: it is answered later, so a repeat reads the message again and then gets that
  late answer);
* else the stored message's outcome, once the message has one: answered, rejected, deferred
  or failed (also when the first request's process died and the orphan sweeper answered it);
* else 409 with ``Retry-After``: the first request is still running (or its message waits
  for the sweeper);
* 422 when the key or the message id was used for a different message.

A message left "interrupted" (a shutdown stopped it) runs again under its own id: the
pipeline resumes it once (its admission is a conditional UPDATE). A key whose first request
died before recording its message runs again after ``CLAIM_ABANDONED_AFTER``.

These run in a worker thread (``sync_to_async``), one short step each.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aisystem.api.schemas import MessageIn
from aisystem.api.selectors import StoredMessage, api_message_by_client_id, namespaced
from aisystem.models import MessageStatus
from aisystem.services.idempotency import (
    KeyClaim,
    idempotency_key_claim,
    idempotency_key_finish,
    idempotency_key_take_over,
    request_hash,
)

RETRY_AFTER_SECONDS = 2
# The API status of a stored inbound message whose outcome is known. Received, processing
# and interrupted messages have none yet.
_OUTCOMES: dict[str, str] = {
    MessageStatus.ANSWERED: "answered",
    MessageStatus.DELIVERED: "answered",
    MessageStatus.REJECTED: "rejected",
    MessageStatus.IGNORED: "rejected",
    MessageStatus.DEFERRED: "deferred",
    MessageStatus.FAILED: "failed",
}
KEY_REUSED = (
    "This Idempotency-Key was used for a different request; use a new key for a new message."
)
MESSAGE_ID_REUSED = (
    "This message_id was used for a different message in this chat; use a new id for a new message."
)
KEY_RUNNING = "The request with this Idempotency-Key is still being answered; retry later."
MESSAGE_RUNNING = "The message with this message_id is still being answered; retry later."


@dataclass(frozen=True)
class Run:
    """Run the pipeline for the message recorded as ``transport_message_id``; store the
    answer under the key ``key_pk`` (None: no key)."""

    transport_message_id: str
    key_pk: int | None = None


@dataclass(frozen=True)
class Answer:
    """What to answer: ``body`` with HTTP ``status``; ``replayed`` when it is a stored
    result; ``retry_after`` (seconds) with a 409."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False
    retry_after: int | None = None


def message_fields(payload: MessageIn) -> dict[str, object]:
    """The fields that make a request the same request (hashed for an Idempotency-Key)."""
    return {
        "chat_id": payload.chat_id,
        "user_id": payload.user_id,
        "text": payload.text,
        "message_id": payload.message_id,
    }


def api_message_plan(
    *, token_id: int, payload: MessageIn, idempotency_key: str | None, now: datetime
) -> Run | Answer:
    """Before the pipeline: run this message, or answer it from what is stored."""
    if idempotency_key is None:
        if payload.message_id is None:
            return Run(transport_message_id=uuid.uuid4().hex)
        return _by_message(token_id, payload, payload.message_id, key=None, now=now)
    fingerprint = request_hash(message_fields(payload))
    claim = idempotency_key_claim(
        token_id=token_id,
        key=idempotency_key,
        request_hash=fingerprint,
        transport_message_id=payload.message_id or uuid.uuid4().hex,
        now=now,
    )
    if claim.request_hash != fingerprint:
        return Answer(422, {"detail": KEY_REUSED})
    if claim.response_status is not None:
        return Answer(claim.response_status, claim.response_body or {}, replayed=True)
    if claim.created and payload.message_id is None:  # a fresh id: nothing stored under it
        return Run(transport_message_id=claim.transport_message_id, key_pk=claim.pk)
    return _by_message(token_id, payload, claim.transport_message_id, key=claim, now=now)


def api_message_settle(
    *,
    token_id: int,
    payload: MessageIn,
    run: Run,
    body: dict[str, Any] | None,
) -> Answer:
    """After the pipeline: ``body`` is its result, stored under the key; None when the
    pipeline found the message already recorded (a concurrent retry got there first), which
    is then answered from what is stored, or with a 409 while that is still running."""
    if body is None:
        found = api_message_by_client_id(
            token_id=token_id,
            chat_id=payload.chat_id,
            transport_message_id=run.transport_message_id,
        )
        stored = _outcome(found) if found is not None else None
        if stored is None:
            return _running(key=run.key_pk is not None)
        body = stored
    if run.key_pk is not None and _final(body):
        idempotency_key_finish(pk=run.key_pk, status=200, body=body)
    return Answer(200, body)


def _by_message(
    token_id: int,
    payload: MessageIn,
    transport_message_id: str,
    *,
    key: KeyClaim | None,
    now: datetime,
) -> Run | Answer:
    run = Run(transport_message_id=transport_message_id, key_pk=key.pk if key else None)
    found = api_message_by_client_id(
        token_id=token_id, chat_id=payload.chat_id, transport_message_id=transport_message_id
    )
    if found is None:
        if key is None or key.created or idempotency_key_take_over(claim=key, now=now):
            return run
        return _running(key=True)
    if found.text != payload.text or found.sender_id != namespaced(token_id, payload.user_id):
        return Answer(422, {"detail": KEY_REUSED if key else MESSAGE_ID_REUSED})
    body = _outcome(found)
    if body is None:
        if found.status == MessageStatus.INTERRUPTED:
            return run  # the pipeline resumes it, once
        return _running(key=key is not None)
    if key is not None and _final(body):
        idempotency_key_finish(pk=key.pk, status=200, body=body)
    return Answer(200, body, replayed=True)


def _final(body: dict[str, Any]) -> bool:
    """Whether ``body`` is the message's last word, to be stored under its key. A deferred
    message is answered later (Claude was away, or its process died): a repeat of its key
    reads the message again, and so gets the late answer once there is one."""
    return body.get("status") != "deferred"


def _outcome(found: StoredMessage) -> dict[str, Any] | None:
    """The response body for a stored message with a known outcome (nothing ran now, so no
    timings), or None while it has none."""
    status = _OUTCOMES.get(found.status)
    if status is None:
        return None
    return {
        "status": status,
        "reply": found.reply or "",
        "message_id": found.message_id,
        "timings_ms": {},
        "reason": found.reason,
    }


def _running(*, key: bool) -> Answer:
    return Answer(
        409,
        {"detail": KEY_RUNNING if key else MESSAGE_RUNNING},
        retry_after=RETRY_AFTER_SECONDS,
    )
