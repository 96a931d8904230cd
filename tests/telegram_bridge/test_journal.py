"""The record of a reply's messages (``telegram_bridge.journal``): what the bridge and the outbox
read back after a stop, a crash or a long flood wait."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.models.delivery import ReplyDelivery
from aisystem.services.delivery import reply_deliveries_purge
from telegram_bridge.journal import ReplyJournal

pytestmark = pytest.mark.django_db(transaction=True)


def journal() -> ReplyJournal:
    return ReplyJournal("reply:1", transport="telegram", chat_id="42")


async def test_the_random_id_is_stored_before_the_send_and_kept_until_it_is_answered() -> None:
    first = journal()
    random_id = await first.before_send()

    later = journal()  # another process, after a crash
    await later.load()
    assert later.pending is not None and later.pending.random_id == random_id
    assert await later.before_send() == random_id  # the retry reuses it

    await later.sent("500")
    assert later.pending is None
    assert await later.before_send() != random_id  # the next part gets its own


async def test_a_finished_reply_reads_back_complete_with_its_messages_and_text() -> None:
    writer = journal()
    await writer.before_send()
    await writer.sent("500")
    await writer.before_send()
    await writer.sent("501")
    await writer.finished("the **answer**")

    reader = journal()
    await reader.load()
    assert (reader.message_ids, reader.complete, reader.text) == (
        ["500", "501"],
        True,
        "the **answer**",
    )


async def test_records_not_written_for_a_week_are_purged() -> None:
    await journal().before_send()
    old = ReplyJournal("reply:2", transport="telegram", chat_id="42")
    await old.before_send()
    await ReplyDelivery.objects.filter(key="reply:2").aupdate(
        updated_at=timezone.now() - timedelta(days=8)
    )

    purged = await sync_to_async(reply_deliveries_purge)(
        older_than=timezone.now() - timedelta(days=7)
    )

    assert purged == 1
    assert [key async for key in ReplyDelivery.objects.values_list("key", flat=True)] == ["reply:1"]
