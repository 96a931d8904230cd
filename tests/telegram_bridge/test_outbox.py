"""The outbox: claims in order per chat and one at a time, exactly-once marks, retries."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, connection, transaction

from aisystem.errors import IntegrationError
from aisystem.models import Chat, OutboxItem
from pipeline.response_manager import ResponseManager
from telegram_bridge.outbox import (
    OutboxSender,
    outbox_claim,
    outbox_enqueue,
    outbox_mark_failed,
    outbox_mark_sent,
    outbox_requeue_stale,
    outbox_retry_at,
)
from tests.factories import ChatFactory
from tests.fakes.transport import RecordingTransport

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FloodWait(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"wait {seconds} s")
        self.seconds = seconds


class FlakyTransport(RecordingTransport):
    """Raises the queued errors on send, one per call, then sends normally."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__()
        self.errors = errors

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        if self.errors:
            raise self.errors.pop(0)
        return await super().send_text(chat_id, text, reply_to=reply_to)


class ChatRecordingTransport(RecordingTransport):
    """Also records which chat each message went to, and yields mid-send like a network call."""

    def __init__(self) -> None:
        super().__init__()
        self.by_chat: dict[str, list[str]] = {}

    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        await asyncio.sleep(0.001)
        self.by_chat.setdefault(chat_id, []).append(text)
        return await super().send_text(chat_id, text, reply_to=reply_to)


@pytest.fixture(autouse=True)
async def _close_sync_thread_connection() -> AsyncIterator[None]:
    """Close the connection sync_to_async's thread opened, so PostgreSQL can drop the test
    database at the end of the run."""
    yield
    await sync_to_async(close_connection)()


def close_connection() -> None:
    connection.close()  # resolved in the calling thread: that thread's own connection


@pytest.fixture
def chats() -> Iterator[list[Chat]]:
    yield [ChatFactory(external_id=f"-100{n}") for n in range(3)]


def enqueue(chat: Chat, text: str, *, key: str | None = None, reply_to: str = "") -> int:
    item_id, _ = outbox_enqueue(
        transport="telegram",
        chat_pk=chat.pk,
        text=text,
        idempotency_key=key or f"test:{text}",
        reply_to=reply_to,
    )
    OutboxItem.objects.filter(pk=item_id).update(available_at=T0)
    return item_id


def all_statuses() -> set[str]:
    return set(OutboxItem.objects.values_list("status", flat=True))


def status(item_id: int) -> OutboxItem:
    return OutboxItem.objects.get(pk=item_id)


# --- Claiming ---------------------------------------------------------------------------------


def test_a_claim_takes_one_item_per_chat_oldest_first(chats: list[Chat]) -> None:
    a1, a2 = enqueue(chats[0], "a1"), enqueue(chats[0], "a2")
    b1 = enqueue(chats[1], "b1")

    claims = outbox_claim(transport="telegram", limit=10, now=T0)

    assert [c.item_id for c in claims] == [a1, b1]
    assert claims[0].chat_external_id == chats[0].external_id
    assert status(a1).status == "sending"
    assert status(a2).status == "pending"


def test_a_chats_next_item_waits_until_the_one_in_flight_is_done(chats: list[Chat]) -> None:
    a1, a2 = enqueue(chats[0], "a1"), enqueue(chats[0], "a2")
    outbox_claim(transport="telegram", limit=10, now=T0)

    assert outbox_claim(transport="telegram", limit=10, now=T0) == []

    assert outbox_mark_sent(a1, "501", T0)
    assert [c.item_id for c in outbox_claim(transport="telegram", limit=10, now=T0)] == [a2]


def test_a_retry_waiting_to_be_due_holds_back_the_chats_later_items(chats: list[Chat]) -> None:
    a1, _ = enqueue(chats[0], "a1"), enqueue(chats[0], "a2")
    outbox_claim(transport="telegram", limit=10, now=T0)
    outbox_mark_failed(a1, "timeout", retry_at=T0 + timedelta(seconds=5))

    assert outbox_claim(transport="telegram", limit=10, now=T0) == []
    later = T0 + timedelta(seconds=5)
    assert [c.item_id for c in outbox_claim(transport="telegram", limit=10, now=later)] == [a1]


def test_a_failed_item_does_not_block_the_chat(chats: list[Chat]) -> None:
    a1, a2 = enqueue(chats[0], "a1"), enqueue(chats[0], "a2")
    outbox_claim(transport="telegram", limit=10, now=T0)
    outbox_mark_failed(a1, "chat not found", retry_at=None)

    assert [c.item_id for c in outbox_claim(transport="telegram", limit=10, now=T0)] == [a2]


def test_a_claim_respects_the_limit_transport_and_availability(chats: list[Chat]) -> None:
    first = enqueue(chats[0], "first")
    enqueue(chats[1], "second")
    future = enqueue(chats[2], "later")
    OutboxItem.objects.filter(pk=future).update(available_at=T0 + timedelta(minutes=1))
    browser = ChatFactory(transport="web")
    outbox_enqueue(transport="web", chat_pk=browser.pk, text="web", idempotency_key="web")

    assert [c.item_id for c in outbox_claim(transport="telegram", limit=1, now=T0)] == [first]
    assert len(outbox_claim(transport="telegram", limit=10, now=T0)) == 1


def test_concurrent_claimers_never_take_the_same_item(chats: list[Chat]) -> None:
    many = [ChatFactory() for _ in range(30)]
    for chat in many:
        enqueue(chat, f"{chat.pk}-1")
        enqueue(chat, f"{chat.pk}-2")
    start = threading.Barrier(4)

    def claimer() -> list[int]:
        taken: list[int] = []
        try:
            start.wait()
            for _ in range(10):
                claims = outbox_claim(transport="telegram", limit=5, now=T0)
                taken += [c.item_id for c in claims]
            return taken
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: claimer(), range(4)))

    taken = [item_id for result in results for item_id in result]
    assert len(taken) == len(set(taken)) == 30  # one per chat: the first ones
    assert set(OutboxItem.objects.filter(status="sending").values_list("pk", flat=True)) == set(
        taken
    )


# --- Marking ----------------------------------------------------------------------------------


def test_an_item_is_marked_sent_exactly_once(chats: list[Chat]) -> None:
    item = enqueue(chats[0], "hello")
    outbox_claim(transport="telegram", limit=10, now=T0)

    assert outbox_mark_sent(item, "501", T0) is True
    assert outbox_mark_sent(item, "502", T0 + timedelta(seconds=1)) is False
    assert outbox_mark_failed(item, "late", retry_at=None) is False

    row = status(item)
    assert (row.status, row.sent_transport_message_id, row.sent_at) == ("sent", "501", T0)


def test_an_unclaimed_item_cannot_be_marked(chats: list[Chat]) -> None:
    item = enqueue(chats[0], "hello")
    assert outbox_mark_sent(item, "501", T0) is False
    assert status(item).status == "pending"


def test_the_same_idempotency_key_queues_one_item(chats: list[Chat]) -> None:
    first, created = outbox_enqueue(
        transport="telegram", chat_pk=chats[0].pk, text="one", idempotency_key="reply:7"
    )
    again, created_again = outbox_enqueue(
        transport="telegram", chat_pk=chats[0].pk, text="two", idempotency_key="reply:7"
    )

    assert first == again and created and not created_again
    assert list(OutboxItem.objects.values_list("text", flat=True)) == ["one"]
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxItem.objects.create(
            transport="telegram", chat=chats[0], text="three", idempotency_key="reply:7"
        )


def test_the_retry_schedule_is_5s_30s_2min_10min_then_none() -> None:
    delays = [outbox_retry_at(failed_attempts=n, now=T0) for n in range(1, 6)]
    assert delays == [
        T0 + timedelta(seconds=5),
        T0 + timedelta(seconds=30),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=10),
        None,
    ]


def test_stale_sending_items_go_back_to_pending(chats: list[Chat]) -> None:
    old, fresh = enqueue(chats[0], "old"), enqueue(chats[1], "fresh")
    outbox_claim(transport="telegram", limit=1, now=T0)
    outbox_claim(transport="telegram", limit=1, now=T0 + timedelta(minutes=5))

    assert outbox_requeue_stale(older_than=T0 + timedelta(minutes=1)) == 1

    assert (status(old).status, status(old).attempts) == ("pending", 1)
    assert status(fresh).status == "sending"
    claims = outbox_claim(transport="telegram", limit=10, now=T0 + timedelta(minutes=6))
    assert [c.item_id for c in claims] == [old]


def test_an_item_that_keeps_getting_interrupted_ends_failed(chats: list[Chat]) -> None:
    item = enqueue(chats[0], "poison")
    OutboxItem.objects.filter(pk=item).update(attempts=4)
    outbox_claim(transport="telegram", limit=1, now=T0)

    outbox_requeue_stale(older_than=T0 + timedelta(seconds=1))

    assert (status(item).status, status(item).attempts) == ("failed", 5)


# --- The sender -------------------------------------------------------------------------------


async def test_the_sender_delivers_each_chats_items_in_order(chats: list[Chat]) -> None:
    for chat in chats:
        for n in range(3):
            await sync_to_async(enqueue)(chat, f"{chat.external_id} #{n}")
    transport = ChatRecordingTransport()
    sender = OutboxSender(clock=Clock())

    while await sender.drain_once(transport, ResponseManager()):
        pass

    assert transport.by_chat == {
        chat.external_id: [f"{chat.external_id} #{n}" for n in range(3)] for chat in chats
    }
    statuses = await sync_to_async(
        lambda: set(OutboxItem.objects.values_list("status", flat=True))
    )()
    assert statuses == {"sent"}


async def test_the_sender_replies_to_the_stored_message_and_records_its_id(
    chats: list[Chat],
) -> None:
    item = await sync_to_async(enqueue)(chats[0], "answer", reply_to="77")
    transport = RecordingTransport()

    assert await OutboxSender(clock=Clock()).drain_once(transport, ResponseManager()) == 1

    [sent] = transport.sent
    assert (sent.text, sent.reply_to) == ("answer", "77")
    row = await sync_to_async(status)(item)
    assert (row.status, row.sent_transport_message_id, row.sent_at) == ("sent", sent.message_id, T0)


async def test_two_drainers_at_once_never_send_an_item_twice(chats: list[Chat]) -> None:
    for chat in chats:
        for n in range(4):
            await sync_to_async(enqueue)(chat, f"{chat.external_id} #{n}")
    transport = ChatRecordingTransport()
    first, second = OutboxSender(clock=Clock()), OutboxSender(clock=Clock())

    for _ in range(20):
        await asyncio.gather(
            first.drain_once(transport, ResponseManager()),
            second.drain_once(transport, ResponseManager()),
        )

    assert sorted(transport.texts) == sorted(
        f"{chat.external_id} #{n}" for chat in chats for n in range(4)
    )
    for chat in chats:
        assert transport.by_chat[chat.external_id] == [f"{chat.external_id} #{n}" for n in range(4)]


async def test_it_retries_with_backoff_then_delivers(chats: list[Chat]) -> None:
    item = await sync_to_async(enqueue)(chats[0], "hello")
    transport = FlakyTransport([ConnectionError("reset"), TimeoutError("slow")])
    clock = Clock()
    sender = OutboxSender(clock=clock)

    assert await sender.drain_once(transport, ResponseManager()) == 0
    row = await sync_to_async(status)(item)
    assert (row.status, row.attempts, row.available_at) == ("pending", 1, T0 + timedelta(seconds=5))
    assert "ConnectionError" in row.last_error

    clock.advance(seconds=4)
    assert await sender.drain_once(transport, ResponseManager()) == 0  # not due yet
    clock.advance(seconds=1)
    assert await sender.drain_once(transport, ResponseManager()) == 0
    row = await sync_to_async(status)(item)
    assert (row.attempts, row.available_at) == (2, clock.now + timedelta(seconds=30))

    clock.advance(seconds=30)
    assert await sender.drain_once(transport, ResponseManager()) == 1
    assert transport.texts == ["hello"]
    assert (await sync_to_async(status)(item)).status == "sent"


async def test_it_gives_up_after_five_failed_attempts(chats: list[Chat]) -> None:
    item = await sync_to_async(enqueue)(chats[0], "hello")
    transport = FlakyTransport([ConnectionError(f"try {n}") for n in range(10)])
    clock = Clock()
    sender = OutboxSender(clock=clock)

    for _ in range(5):
        await sender.drain_once(transport, ResponseManager())
        clock.advance(minutes=10)

    row = await sync_to_async(status)(item)
    assert (row.status, row.attempts) == ("failed", 5)
    assert "try 4" in row.last_error
    assert len(transport.errors) == 5  # nothing tried after the final failure
    assert await sender.drain_once(transport, ResponseManager()) == 0


async def test_it_retries_after_flood_wait_without_counting_an_attempt(
    chats: list[Chat],
) -> None:
    item = await sync_to_async(enqueue)(chats[0], "hello")
    transport = FlakyTransport([FloodWait(42)])
    clock = Clock()
    sender = OutboxSender(clock=clock)

    await sender.drain_once(transport, ResponseManager())

    row = await sync_to_async(status)(item)
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.available_at == T0 + timedelta(seconds=42)
    clock.advance(seconds=42)
    assert await sender.drain_once(transport, ResponseManager()) == 1


async def test_a_permanent_error_fails_the_item_at_once(chats: list[Chat]) -> None:
    item = await sync_to_async(enqueue)(chats[0], "hello")
    blocked = IntegrationError("telegram", "send_message", "bot was blocked", permanent=True)
    transport = FlakyTransport([blocked])

    await OutboxSender(clock=Clock()).drain_once(transport, ResponseManager())

    row = await sync_to_async(status)(item)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "bot was blocked" in row.last_error


async def test_run_delivers_until_stopped_and_requeues_stale_items(chats: list[Chat]) -> None:
    stale = await sync_to_async(enqueue)(chats[0], "interrupted")
    await sync_to_async(outbox_claim)(transport="telegram", limit=1, now=T0)
    await sync_to_async(enqueue)(chats[1], "queued")
    clock = Clock(T0 + timedelta(minutes=5))
    transport = RecordingTransport()
    stop = asyncio.Event()

    runner = asyncio.create_task(
        OutboxSender(clock=clock).run(stop, 0.01, transport=transport, responses=ResponseManager())
    )
    for _ in range(300):
        if len(transport.sent) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(runner, 5)

    assert sorted(transport.texts) == ["interrupted", "queued"]
    row = await sync_to_async(status)(stale)
    assert (row.status, row.attempts) == ("sent", 1)
