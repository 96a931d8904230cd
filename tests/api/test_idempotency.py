"""``Idempotency-Key`` and the client's ``message_id``: a retry is never answered twice.

The requests go through Django's ASGI handling; the pipeline runs for real against the fake
Messages API, whose recorded requests say how many times Claude was asked.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.models import (
    ApiIdempotencyKey,
    ApiToken,
    Chat,
    Direction,
    Identity,
    Message,
    MessageStatus,
)
from aisystem.services.idempotency import (
    idempotency_key_claim,
    idempotency_keys_purge,
    request_hash,
)
from aisystem.services.retention import retention_purge
from pipeline.claude.client import ClaudeClient
from pipeline.deferred import deferred_answer
from pipeline.fakeclaude import OVERLOADED, FakeClaude, Scenario
from tests.api.conftest import a_token, post, read_stream
from tests.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"chat_id": "c1", "user_id": "u1", "text": "What is 2+2?"}
KEY = {"Idempotency-Key": "5f0c3c59-0d6b-4c1a-9b0e-3c1d2f6a7e81"}
SLOW = Scenario(name="slow-start", reply_text="four", time_to_first_token=3.0)


def inbound_count() -> Any:
    return Message.objects.filter(direction=Direction.INBOUND).acount()


async def wait_for_processing(count: int = 1) -> None:
    """Until ``count`` inbound messages are being processed (a hang guard, not a timing)."""
    for _ in range(500):
        processing = Message.objects.filter(
            direction=Direction.INBOUND, status=MessageStatus.PROCESSING
        )
        if await processing.acount() >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the first request never started processing")


async def test_a_repeat_of_a_finished_request_returns_the_stored_result(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    first = await post(BODY, token[1], **KEY)
    repeat = await post(BODY, token[1], **KEY)

    assert first.status_code == repeat.status_code == 200
    assert repeat.json() == first.json()
    assert repeat["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert len(fake_claude.requests) == 1
    assert await inbound_count() == 1


async def test_a_repeat_with_a_respaced_body_is_the_same_request(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    await post(BODY, token[1], **KEY)
    respaced = '{ "text": "What is 2+2?",  "user_id": "u1", "chat_id": "c1" }'

    repeat = await post(respaced, token[1], **KEY)

    assert repeat.status_code == 200
    assert repeat["Idempotent-Replayed"] == "true"
    assert len(fake_claude.requests) == 1


async def test_a_repeat_while_the_first_runs_is_409_with_retry_after(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(SLOW)
    first = asyncio.create_task(post(BODY, token[1], **KEY))
    await wait_for_processing()

    repeat = await post(BODY, token[1], **KEY)
    answered = await first

    assert repeat.status_code == 409
    assert int(repeat["Retry-After"]) >= 1
    assert "still being answered" in repeat.json()["detail"]
    assert answered.status_code == 200 and answered.json()["reply"] == "four"
    assert len(fake_claude.requests) == 1
    assert await inbound_count() == 1


async def test_the_same_key_with_another_body_is_422(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    await post(BODY, token[1], **KEY)

    other = await post({**BODY, "text": "What is 3+3?"}, token[1], **KEY)

    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert len(fake_claude.requests) == 1
    assert await inbound_count() == 1


async def test_a_key_belongs_to_its_token(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    other_token = await a_token("other")

    mine = await post(BODY, token[1], **KEY)
    theirs = await post({**BODY, "text": "something else"}, other_token, **KEY)

    assert mine.status_code == theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs
    assert len(fake_claude.requests) == 2


async def test_two_requests_with_one_key_at_the_same_moment_get_one_answer(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(Scenario(name="slowish", reply_text="four", time_to_first_token=1))

    responses = await asyncio.gather(*(post(BODY, token[1], **KEY) for _ in range(4)))

    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 409, 409, 409]
    assert len(fake_claude.requests) == 1
    assert await inbound_count() == 1
    assert await ApiIdempotencyKey.objects.acount() == 1


async def test_a_streamed_request_is_stored_and_replayed_as_json_or_stream(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(
        Scenario(name="words", reply_text="alpha beta gamma", tokens_per_second=100)
    )
    stream = "text/event-stream"

    first = await read_stream(await post(BODY, token[1], Accept=stream, **KEY))
    as_json = await post(BODY, token[1], **KEY)
    as_stream_response = await post(BODY, token[1], Accept=stream, **KEY)
    as_stream = await read_stream(as_stream_response)

    done = first[-1][1]
    assert first[-1][0] == "done" and done["reply"] == "alpha beta gamma"
    assert as_json.json() == done
    assert as_stream_response["Idempotent-Replayed"] == "true"
    assert as_stream == [("reset", {"text": "alpha beta gamma"}), ("done", done)]
    assert len(fake_claude.requests) == 1


async def test_a_key_whose_first_request_died_answers_once_the_message_is_answered(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    """A web process killed mid-message leaves the key claimed and its message processing;
    the repeat says 409 until the orphan sweeper answers the message, then that answer."""
    message = await sync_to_async(_died_mid_message)(token[0])

    while_orphaned = await post(BODY, token[1], **KEY)
    await sync_to_async(_the_sweeper_answers)(message, "Four.")
    after = await post(BODY, token[1], **KEY)
    again = await post(BODY, token[1], **KEY)

    assert while_orphaned.status_code == 409
    assert after.status_code == 200
    assert after.json()["status"] == "answered"
    assert after.json()["reply"] == "Four."
    assert after.json()["message_id"] == message.pk
    assert again.json() == after.json()
    assert fake_claude.requests == []
    assert await inbound_count() == 1


async def test_a_claim_that_never_recorded_its_message_is_run_by_a_later_repeat(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    """Killed between claiming the key and recording the message: after a minute, the next
    repeat runs the message itself."""
    long_ago = timezone.now() - timedelta(minutes=5)
    await sync_to_async(idempotency_key_claim)(
        token_id=token[0].pk,
        key=KEY["Idempotency-Key"],
        request_hash=request_hash({**BODY, "message_id": None}),
        transport_message_id="never-recorded",
        now=long_ago,
    )

    repeat = await post(BODY, token[1], **KEY)

    assert repeat.status_code == 200
    assert repeat.json()["status"] == "answered"
    assert len(fake_claude.requests) == 1
    stored = await Message.objects.aget(direction=Direction.INBOUND)
    assert stored.transport_message_id == "never-recorded"


async def test_a_recent_claim_without_a_message_is_still_running(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    await sync_to_async(idempotency_key_claim)(
        token_id=token[0].pk,
        key=KEY["Idempotency-Key"],
        request_hash=request_hash({**BODY, "message_id": None}),
        transport_message_id="being-recorded",
        now=timezone.now(),
    )

    repeat = await post(BODY, token[1], **KEY)

    assert repeat.status_code == 409
    assert fake_claude.requests == []


async def test_a_key_is_kept_for_24_hours(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    await post(BODY, token[1], **KEY)
    await ApiIdempotencyKey.objects.aupdate(expires_at=timezone.now() - timedelta(seconds=1))

    after_a_day = await post(BODY, token[1], **KEY)

    assert after_a_day.status_code == 200
    assert "Idempotent-Replayed" not in after_a_day
    assert len(fake_claude.requests) == 2
    assert await inbound_count() == 2


async def test_the_retention_job_purges_expired_keys(token: tuple[ApiToken, str]) -> None:
    await post(BODY, token[1], **KEY)
    await post(BODY, token[1], **{"Idempotency-Key": "fresh"})
    await ApiIdempotencyKey.objects.filter(key=KEY["Idempotency-Key"]).aupdate(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    await sync_to_async(retention_purge)()

    keys = [key async for key in ApiIdempotencyKey.objects.values_list("key", flat=True)]
    assert keys == ["fresh"]


def test_purging_goes_in_batches(token: tuple[ApiToken, str]) -> None:
    now = timezone.now()
    for number in range(5):
        idempotency_key_claim(
            token_id=token[0].pk,
            key=f"k{number}",
            request_hash="0" * 64,
            transport_message_id=f"m{number}",
            now=now - timedelta(days=2),
        )

    assert idempotency_keys_purge(now=now, batch=2) == 5
    assert ApiIdempotencyKey.objects.count() == 0


# --- The client's message_id --------------------------------------------------------------


async def test_a_retry_with_the_same_message_id_is_not_recorded_twice(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    body = {**BODY, "message_id": "msg-0001"}

    first = await post(body, token[1])
    retry = await post(body, token[1])

    assert first.status_code == retry.status_code == 200
    assert retry.json()["reply"] == first.json()["reply"]
    assert retry.json()["message_id"] == first.json()["message_id"]
    assert retry["Idempotent-Replayed"] == "true"
    assert len(fake_claude.requests) == 1
    stored = await Message.objects.aget(direction=Direction.INBOUND)
    assert stored.transport_message_id == "msg-0001"


async def test_a_retry_while_the_first_runs_is_409(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(SLOW)
    body = {**BODY, "message_id": "msg-0002"}
    first = asyncio.create_task(post(body, token[1]))
    await wait_for_processing()

    retry = await post(body, token[1])
    await first

    assert retry.status_code == 409
    assert retry["Retry-After"]
    assert await inbound_count() == 1


async def test_the_same_message_id_for_another_text_is_422(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    await post({**BODY, "message_id": "msg-0003"}, token[1])

    other_text = await post({**BODY, "text": "Other", "message_id": "msg-0003"}, token[1])
    other_user = await post({**BODY, "user_id": "u2", "message_id": "msg-0003"}, token[1])

    assert other_text.status_code == other_user.status_code == 422
    assert "message_id" in other_text.json()["detail"]
    assert len(fake_claude.requests) == 1


async def test_a_message_id_is_unique_per_chat(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    await post({**BODY, "message_id": "msg-0004"}, token[1])
    other_chat = await post({**BODY, "chat_id": "c2", "message_id": "msg-0004"}, token[1])

    assert other_chat.status_code == 200
    assert "Idempotent-Replayed" not in other_chat
    assert await inbound_count() == 2


async def test_an_interrupted_message_retried_with_its_id_is_answered(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    first = await post({**BODY, "message_id": "msg-0005"}, token[1])
    await Message.objects.filter(pk=first.json()["message_id"]).aupdate(
        status=MessageStatus.INTERRUPTED, status_reason="shutdown"
    )

    retry = await post({**BODY, "message_id": "msg-0005"}, token[1])

    assert retry.status_code == 200
    assert retry.json()["status"] == "answered"
    assert retry.json()["message_id"] == first.json()["message_id"]
    assert len(fake_claude.requests) == 2
    assert await inbound_count() == 1


@pytest.mark.parametrize("message_id", ["", "has space", "x" * 65, "ü"])
async def test_an_unusable_message_id_is_422(token: tuple[ApiToken, str], message_id: str) -> None:
    response = await post({**BODY, "message_id": message_id}, token[1])

    assert response.status_code == 422
    assert "message_id" in str(response.json())


async def test_a_key_and_a_message_id_together_use_the_message_id(
    token: tuple[ApiToken, str], fake_claude: FakeClaude
) -> None:
    body = {**BODY, "message_id": "msg-0006"}
    await post(body, token[1])  # sent once without the key

    with_key = await post(body, token[1], **KEY)
    repeat = await post(body, token[1], **KEY)

    assert with_key.status_code == 200 and with_key["Idempotent-Replayed"] == "true"
    assert repeat.json() == with_key.json()
    assert len(fake_claude.requests) == 1


# --- Helpers: what a process killed mid-message leaves, and what the sweeper does ---------


def _died_mid_message(token: ApiToken) -> Message:
    claim = idempotency_key_claim(
        token_id=token.pk,
        key=KEY["Idempotency-Key"],
        request_hash=request_hash({**BODY, "message_id": None}),
        transport_message_id="orphan-1",
        now=timezone.now(),
    )
    chat = Chat.objects.create(transport="api", external_id=f"{token.pk}:c1", chat_type="api")
    identity = Identity.objects.create(transport="api", external_id=f"{token.pk}:u1")
    return Message.objects.create(
        transport="api",
        chat=chat,
        identity=identity,
        transport_message_id=claim.transport_message_id,
        direction=Direction.INBOUND,
        status=MessageStatus.PROCESSING,
        text=BODY["text"],
    )


def _the_sweeper_answers(message: Message, reply: str) -> None:
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.ANSWERED)
    Message.objects.create(
        transport="api",
        chat_id=message.chat_id,
        identity_id=message.identity_id,
        reply_to=message,
        transport_message_id=f"reply-{message.pk}",
        direction=Direction.OUTBOUND,
        status=MessageStatus.DELIVERED,
        text=reply,
    )


async def test_a_repeat_of_a_deferred_request_gets_the_late_answer_once_there_is_one(
    token: tuple[ApiToken, str], fake_claude: FakeClaude, settings: Any
) -> None:
    settings.CLAUDE = {**settings.CLAUDE, "MAX_ATTEMPTS": 1}
    fake_claude.set_scenario(OVERLOADED)
    first = await post(BODY, token[1], **KEY)
    waiting = await post(BODY, token[1], **KEY)
    fake_claude.reset()  # Claude is back, and the deferred job answers it
    job = ClaudeClient(base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY)
    assert await sync_to_async(deferred_answer)(client=job) == 1

    late = await post(BODY, token[1], **KEY)
    again = await post(BODY, token[1], **KEY)

    assert first.json()["status"] == waiting.json()["status"] == "deferred"
    assert late.json()["status"] == "answered" and "2+2" in late.json()["reply"]
    assert again.json() == late.json()
    assert await inbound_count() == 1
