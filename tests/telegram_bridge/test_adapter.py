"""Raw MTProto updates → the real Pyrogram dispatcher → ``inbound_from_message``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC

import pytest
from pyrogram import raw, types

from pipeline.agent_request import AttachmentLimits, inspect_attachment
from pipeline.type_router import classify
from pipeline.types import Contact, InboundMessage, Location, Poll
from telegram_bridge.adapter import BridgeIdentity, inbound_from_message, media_group_key
from telegram_bridge.albums import MediaGroupBuffer
from telegram_bridge.faketelegram import TelegramHarness
from telegram_bridge.faketelegram.builders import (
    contact,
    entity,
    forwarded_from,
    group_chat,
    jpeg,
    location,
    make_user,
    poll,
    private_chat,
    supergroup_chat,
    venue,
)

BOT = make_user(7000, "Assistant", username="aisystem_bot", bot=True, is_self=True)
ALICE = make_user(1001, "Alice", username="alice", last_name="Liddell")
BOB = make_user(1002, "Bob")
ME_BOT = BridgeIdentity(user_id=BOT.id, username="aisystem_bot", is_bot=True)
LIMITS = AttachmentLimits(max_image_bytes=10_000, max_pdf_bytes=5_000, max_text_file_bytes=1_000)
PDF = b"%PDF-1.7\n" + bytes(200)


@pytest.fixture
async def harness() -> AsyncIterator[TelegramHarness]:
    harness = TelegramHarness(BOT)
    await harness.start()
    yield harness
    await harness.stop()


async def inbound(
    harness: TelegramHarness, raw_message: raw.base.Message, *, edited: bool = False
) -> InboundMessage | None:
    message = await harness.deliver(raw_message, edited=edited)
    assert isinstance(message, types.Message)
    return await inbound_from_message(harness.client, message, me=ME_BOT, limits=LIMITS)


async def must(harness: TelegramHarness, raw_message: raw.base.Message) -> InboundMessage:
    result = await inbound(harness, raw_message)
    assert result is not None
    return result


def downloads(harness: TelegramHarness) -> list[raw.functions.upload.GetFile]:
    return harness.server.sent(raw.functions.upload.GetFile)


# --- Text, people and chats ----------------------------------------------------------------


async def test_a_private_text_becomes_an_inbound_message(harness: TelegramHarness) -> None:
    raw_message = harness.message(private_chat(ALICE), ALICE, "Hello there")

    message = await must(harness, raw_message)

    assert message.transport == "telegram"
    assert (message.chat_id, message.chat_type) == (str(ALICE.id), "private")
    assert message.message_id == str(raw_message.id)
    assert (message.sender_id, message.sender_username) == (str(ALICE.id), "alice")
    assert message.sender_name == "Alice Liddell"
    assert message.chat_title == "Alice Liddell"
    assert message.text == "Hello there"
    assert message.sent_at.tzinfo is not None and message.sent_at.utcoffset() == UTC.utcoffset(None)
    assert not (message.is_own or message.is_edited or message.is_forwarded)
    assert message.assistant_username == "aisystem_bot"
    assert message.attachments == () and message.reply_to is None


async def test_a_command_keeps_its_text(harness: TelegramHarness) -> None:
    text = "/help@aisystem_bot"
    command = entity(text, text, raw.types.MessageEntityBotCommand)
    raw_message = harness.message(group_chat(2001, "Team"), ALICE, text, entities=[command])

    message = await must(harness, raw_message)

    assert message.text == "/help@aisystem_bot"
    assert classify(message) == ("command", "command")


async def test_chat_types_and_ids_follow_telegram(harness: TelegramHarness) -> None:
    group = await must(harness, harness.message(group_chat(2001, "Team"), ALICE, "hi"))
    supergroup = await must(harness, harness.message(supergroup_chat(3001, "Big"), ALICE, "hi"))

    assert (group.chat_id, group.chat_type, group.chat_title) == ("-2001", "group", "Team")
    assert (supergroup.chat_id, supergroup.chat_type) == ("-1000000003001", "supergroup")


async def test_a_channel_post_is_sent_by_the_channel(harness: TelegramHarness) -> None:
    channel = supergroup_chat(4001, "News", broadcast=True)

    message = await must(harness, harness.message(channel, None, "Breaking"))

    assert message.chat_type == "channel"
    assert (message.sender_id, message.sender_name) == (message.chat_id, "News")


async def test_catch_up_is_passed_through(harness: TelegramHarness) -> None:
    parsed = await harness.deliver(harness.message(private_chat(ALICE), ALICE, "missed"))

    message = await inbound_from_message(
        harness.client, parsed, me=ME_BOT, limits=LIMITS, catch_up=True
    )

    assert message is not None and message.is_catch_up


# --- Mentions and replies --------------------------------------------------------------------


async def test_a_mention_of_our_username_in_a_group_is_detected(harness: TelegramHarness) -> None:
    text = "hey @AISystem_Bot what now?"
    mention = entity(text, "@AISystem_Bot", raw.types.MessageEntityMention)
    group = supergroup_chat(3001, "Big")

    message = await must(harness, harness.message(group, ALICE, text, entities=[mention]))

    assert message.mentions_assistant


async def test_a_mention_of_someone_else_is_not_ours(harness: TelegramHarness) -> None:
    text = "ask @alice or @aisystem_bot_fan"
    mentions = [
        entity(text, "@alice", raw.types.MessageEntityMention),
        entity(text, "@aisystem_bot_fan", raw.types.MessageEntityMention),
    ]
    group = group_chat(2001, "Team")

    message = await must(harness, harness.message(group, BOB, text, entities=mentions))

    assert not message.mentions_assistant


async def test_a_text_mention_of_our_user_is_detected(harness: TelegramHarness) -> None:
    text = "Assistant, help"
    link = entity(text, "Assistant", raw.types.MessageEntityMentionName, user_id=BOT.id)
    group = group_chat(2001, "Team")

    message = await must(harness, harness.message(group, ALICE, text, entities=[link]))

    assert message.mentions_assistant


async def test_a_reply_to_our_message_mentions_us(harness: TelegramHarness) -> None:
    group = group_chat(2001, "Team")
    await harness.meet(group)
    ours = await harness.client.send_message(group.chat_id, "I am the answer")

    message = await must(harness, harness.message(group, ALICE, "why?", reply_to=ours.id))

    assert message.mentions_assistant
    assert message.reply_to is not None
    assert message.reply_to.transport_message_id == str(ours.id)
    assert message.reply_to.text == "I am the answer"
    assert message.reply_to.from_assistant


async def test_a_reply_to_someone_else_is_fetched_but_not_ours(harness: TelegramHarness) -> None:
    group = supergroup_chat(3001, "Big")
    first = harness.message(group, BOB, "Bob's point")
    harness.server.store(first)  # known to the server, not yet seen by the client

    message = await must(harness, harness.message(group, ALICE, "agreed", reply_to=first.id))

    assert harness.server.sent(raw.functions.channels.GetMessages)
    assert message.reply_to is not None
    assert (message.reply_to.text, message.reply_to.sender_name) == ("Bob's point", "Bob")
    assert not message.reply_to.from_assistant and not message.mentions_assistant


async def test_a_reply_to_a_deleted_message_keeps_only_its_id(harness: TelegramHarness) -> None:
    group = supergroup_chat(3001, "Big")

    message = await must(harness, harness.message(group, ALICE, "re", reply_to=99_999))

    assert message.reply_to is not None
    assert message.reply_to.transport_message_id == "99999"
    assert message.reply_to.text == "" and not message.reply_to.from_assistant


# --- Edited, forwarded, own, ignored ----------------------------------------------------------


async def test_an_edited_message_is_marked_edited(harness: TelegramHarness) -> None:
    raw_message = harness.message(private_chat(ALICE), ALICE, "fixed typo")

    message = await inbound(harness, raw_message, edited=True)

    assert message is not None and message.is_edited
    assert classify(message)[0] == "edited"


async def test_a_forwarded_message_is_marked_forwarded(harness: TelegramHarness) -> None:
    raw_message = harness.message(
        private_chat(ALICE), ALICE, "look at this", fwd_from=forwarded_from(BOB)
    )

    message = await must(harness, raw_message)

    assert message.is_forwarded and message.text == "look at this"


async def test_our_own_message_is_marked_own_and_its_files_are_not_fetched() -> None:
    me = make_user(8000, "Helper", username="helper", is_self=True)
    harness = TelegramHarness(me)
    await harness.start()
    try:
        photo = harness.photo(("m", 320, 320, jpeg(500)))
        own = harness.message(group_chat(2001, "Team"), me, "mine", media=photo)
        parsed = await harness.deliver(own)
        identity = BridgeIdentity.from_user(harness.client.me)
        message = await inbound_from_message(harness.client, parsed, me=identity, limits=LIMITS)
    finally:
        await harness.stop()

    assert message is not None and message.is_own
    assert identity == BridgeIdentity(user_id=8000, username="helper", is_bot=False)
    (attachment,) = message.attachments
    assert (attachment.size, attachment.data) == (500, None)
    assert downloads(harness) == []


async def test_a_service_message_is_ignored(harness: TelegramHarness, caplog) -> None:
    joined = raw.types.MessageActionChatAddUser(users=[BOB.id])
    harness.server.add(BOB)

    with caplog.at_level("INFO", logger="telegram_bridge.adapter"):
        message = await inbound(harness, harness.service(group_chat(2001, "Team"), ALICE, joined))

    assert message is None
    assert "service message" in caplog.text


async def test_an_empty_message_is_ignored(harness: TelegramHarness, caplog) -> None:
    with caplog.at_level("INFO", logger="telegram_bridge.adapter"):
        message = await inbound(harness, harness.message(private_chat(ALICE), ALICE, ""))

    assert message is None
    assert "nothing in it" in caplog.text


async def test_an_unknown_media_kind_arrives_without_content(harness: TelegramHarness) -> None:
    dice = raw.types.MessageMediaDice(value=4, emoticon="🎲")

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=dice))

    assert (message.text, message.attachments) == ("", ())
    assert classify(message) == ("unknown", "unknown")


async def test_a_long_message_with_odd_unicode_arrives_intact(harness: TelegramHarness) -> None:
    pieces = "שלום עולם ", "مرحبا ", "a\u200bb\u200dc ", "e\u0301\u0308 ", "👩‍👩‍👧‍👦 🇺🇦 "
    body = "".join(pieces)
    tail = " @aisystem_bot"
    units = 4096 - len(tail.encode("utf-16-le")) // 2
    text = body * (units // (len(body.encode("utf-16-le")) // 2))
    text += "x" * (units - len(text.encode("utf-16-le")) // 2) + tail
    assert len(text.encode("utf-16-le")) // 2 == 4096
    mention = raw.types.MessageEntityMention(offset=4096 - 13, length=13)

    message = await must(
        harness, harness.message(private_chat(ALICE), ALICE, text, entities=[mention])
    )

    assert message.text == text
    assert message.mentions_assistant  # offsets counted in UTF-16 past astral characters


# --- Media -------------------------------------------------------------------------------------


async def test_a_photo_sends_the_largest_size_within_the_limit(harness: TelegramHarness) -> None:
    sizes = [
        ("s", 90, 90, jpeg(500)),
        ("m", 320, 320, jpeg(3_000)),
        ("x", 800, 800, jpeg(9_000)),
        ("y", 1280, 1280, jpeg(20_000)),
    ]
    photo = harness.photo(*sizes)

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, "", media=photo))

    (attachment,) = message.attachments
    assert (attachment.kind, attachment.mime_type) == ("photo", "image/jpeg")
    assert attachment.data == jpeg(9_000)
    assert (attachment.width, attachment.height, attachment.size) == (800, 800, 9_000)
    assert [request.location.thumb_size for request in downloads(harness)] == ["x"]
    assert inspect_attachment(attachment, LIMITS).reason is None


async def test_a_photo_over_the_limit_is_not_downloaded(harness: TelegramHarness) -> None:
    photo = harness.photo(("x", 800, 800, jpeg(12_000)), ("y", 1280, 1280, jpeg(30_000)))

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, "", media=photo))

    (attachment,) = message.attachments
    assert attachment.data is None and attachment.size == 30_000
    assert downloads(harness) == []


async def test_a_caption_without_text_becomes_the_text(harness: TelegramHarness) -> None:
    photo = harness.photo(("m", 320, 320, jpeg(1_000)))

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, "Cat?", media=photo))

    assert message.text == "Cat?" and len(message.attachments) == 1


@pytest.mark.parametrize(
    ("file_name", "mime_type", "data"),
    [
        ("report.pdf", "application/pdf", PDF),
        ("notes.txt", "text/plain", "naïve café\n".encode()),
        ("main.py", "application/octet-stream", b"print('hi')\n"),
    ],
)
async def test_pdfs_and_text_files_are_downloaded(
    harness: TelegramHarness, file_name: str, mime_type: str, data: bytes
) -> None:
    document = harness.document(data, mime_type, file_name=file_name)

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=document))

    (attachment,) = message.attachments
    assert (attachment.kind, attachment.file_name, attachment.mime_type) == (
        "document",
        file_name,
        mime_type,
    )
    assert attachment.data == data and attachment.size == len(data)
    assert inspect_attachment(attachment, LIMITS).reason is None


async def test_a_zip_is_described_but_not_downloaded(harness: TelegramHarness) -> None:
    document = harness.document(b"PK\x03\x04" + bytes(100), "application/zip", file_name="a.zip")

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=document))

    (attachment,) = message.attachments
    assert (attachment.file_name, attachment.size, attachment.data) == ("a.zip", 104, None)
    assert downloads(harness) == []
    assert inspect_attachment(attachment, LIMITS).reason == "document_type"


async def test_a_file_over_its_limit_is_not_downloaded(harness: TelegramHarness) -> None:
    big_pdf = PDF + bytes(LIMITS.max_pdf_bytes)
    document = harness.document(big_pdf, "application/pdf", file_name="big.pdf")

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=document))

    (attachment,) = message.attachments
    assert attachment.data is None and attachment.size == len(big_pdf)
    assert downloads(harness) == []
    assert inspect_attachment(attachment, LIMITS).reason == "document_too_large"


async def test_a_failed_download_leaves_the_file_without_data(harness: TelegramHarness) -> None:
    harness.server.fail(raw.functions.upload.GetFile, "FILE_REFERENCE_EXPIRED")
    document = harness.document(PDF, "application/pdf", file_name="report.pdf")

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=document))

    (attachment,) = message.attachments
    assert attachment.data is None
    assert inspect_attachment(attachment, LIMITS).reason == "download_failed"


@pytest.mark.parametrize(
    ("builder", "kind", "mime_type", "seconds", "size"),
    [
        ("voice", "voice", "audio/ogg", 3.0, None),
        ("audio", "audio", "audio/mpeg", 200.0, None),
        ("video", "video", "video/mp4", 12.0, (1280, 720)),
        ("video_note", "video_note", "video/mp4", 5.0, (240, 240)),
        ("animation", "animation", "video/mp4", 2.0, (320, 240)),
    ],
)
async def test_voice_audio_and_video_are_described_not_downloaded(
    harness: TelegramHarness,
    builder: str,
    kind: str,
    mime_type: str,
    seconds: float,
    size: tuple[int, int] | None,
) -> None:
    media = getattr(harness, builder)()

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=media))

    (attachment,) = message.attachments
    assert (attachment.kind, attachment.mime_type) == (kind, mime_type)
    assert attachment.duration_seconds == seconds and attachment.data is None
    if size is not None:
        assert (attachment.width, attachment.height) == size
    assert downloads(harness) == []


async def test_a_sticker_carries_its_emoji(harness: TelegramHarness) -> None:
    sticker = harness.sticker("🐱")

    message = await must(harness, harness.message(private_chat(ALICE), ALICE, media=sticker))

    (attachment,) = message.attachments
    assert (attachment.kind, attachment.emoji, attachment.mime_type) == (
        "sticker",
        "🐱",
        "image/webp",
    )
    assert classify(message) == ("sticker", "sticker")


async def test_locations_venues_contacts_and_polls_are_read(harness: TelegramHarness) -> None:
    chat = private_chat(ALICE)
    sent = [
        harness.message(chat, ALICE, media=location(52.52, 13.405)),
        harness.message(chat, ALICE, media=venue(48.858, 2.294, "Eiffel Tower", "Paris")),
        harness.message(chat, ALICE, media=contact("+15550100", "Carol", "King")),
        harness.message(chat, ALICE, media=poll("Lunch?", "Pizza", "Sushi")),
    ]

    place, spot, person, vote = [await must(harness, item) for item in sent]

    assert place.location == Location(52.52, 13.405)
    assert spot.location == Location(48.858, 2.294, "Eiffel Tower", "Paris")
    assert person.contact == Contact("+15550100", "Carol", "King")
    assert vote.poll == Poll("Lunch?", ("Pizza", "Sushi"))
    assert [classify(item)[1] for item in (place, spot, person, vote)] == [
        "location",
        "location",
        "contact",
        "poll",
    ]


# --- Albums ---------------------------------------------------------------------------------


class ManualSleep:
    """An injectable sleep that returns only when the test calls ``fire``."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        await future

    async def fire(self) -> None:
        """Let pending timers reach their sleep, wake them all, let them finish."""
        for _ in range(5):
            await asyncio.sleep(0)
        for future in self.waiting:
            if not future.done():
                future.set_result(None)
        self.waiting.clear()
        for _ in range(5):
            await asyncio.sleep(0)


async def test_an_album_of_three_parts_becomes_one_message(harness: TelegramHarness) -> None:
    handed_on: list[InboundMessage] = []

    async def deliver(message: InboundMessage) -> None:
        handed_on.append(message)

    sleep = ManualSleep()
    albums = MediaGroupBuffer(deliver, sleep=sleep)
    chat = supergroup_chat(3001, "Big")
    parts = [
        harness.message(
            chat, ALICE, "", media=harness.photo(("m", 320, 320, jpeg(100))), grouped_id=77
        ),
        harness.message(
            chat, ALICE, "Our trip", media=harness.photo(("m", 320, 320, jpeg(200))), grouped_id=77
        ),
        harness.message(
            chat,
            ALICE,
            media=harness.document(PDF, "application/pdf", file_name="t.pdf"),
            grouped_id=77,
        ),
    ]
    for part in parts:
        parsed = await harness.deliver(part)
        message = await inbound_from_message(harness.client, parsed, me=ME_BOT, limits=LIMITS)
        assert message is not None
        await albums.add(message, media_group_key(parsed))

    assert handed_on == [] and albums.pending == 1
    await sleep.fire()

    (album,) = handed_on
    assert album.message_id == str(parts[0].id)
    assert album.text == "Our trip"
    assert [item.data for item in album.attachments] == [jpeg(100), jpeg(200), PDF]
    assert albums.pending == 0


async def test_a_message_after_an_album_waits_for_it(harness: TelegramHarness) -> None:
    handed_on: list[InboundMessage] = []

    async def deliver(message: InboundMessage) -> None:
        handed_on.append(message)

    albums = MediaGroupBuffer(deliver, sleep=ManualSleep())
    chat = private_chat(ALICE)
    photo = harness.message(chat, ALICE, media=harness.photo(("m", 9, 9, jpeg(10))), grouped_id=5)
    text = harness.message(chat, ALICE, "and also this")
    for raw_message in (photo, text):
        parsed = await harness.deliver(raw_message)
        message = await inbound_from_message(harness.client, parsed, me=ME_BOT, limits=LIMITS)
        assert message is not None
        await albums.add(message, media_group_key(parsed))

    assert [message.message_id for message in handed_on] == [str(photo.id), str(text.id)]
