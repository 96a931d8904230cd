"""The bridge end to end: raw MTProto updates → real Pyrogram dispatch → ``TelegramBridge``'s
handlers → the real pipeline (real database) → fake Claude on loopback → ``TelegramTransport``
→ the raw requests the fake Telegram server receives.

Each bridge runs as ``runbridge`` builds it: a client on the database storage with gap
recovery on, the default transport, and ``run()`` until ``shutdown.request_stop()`` (see
``harness.world``). Only the bridge's ``sleep`` is replaced (flood waits and the outbound
limiter record their wait instead of waiting), and tests that look at streaming shorten the
transport's edit interval.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone
from pyrogram import raw

from aisystem.models import (
    AccessAction,
    AccessRule,
    Direction,
    Event,
    Message,
    OutboxItem,
    TelegramSession,
    Workspace,
)
from pipeline.fakeclaude import FakeClaude, Scenario
from telegram_bridge.bridge import EXIT_OK, EXIT_REVOKED
from telegram_bridge.client_state import DatabaseStorage
from telegram_bridge.config import BridgeConfig
from telegram_bridge.faketelegram import FakeTelegram, HarnessClient, TelegramHarness
from telegram_bridge.faketelegram.builders import (
    contact,
    dice,
    entity,
    group_chat,
    jpeg,
    location,
    make_user,
    now,
    poll,
    private_chat,
    session_string,
    utf16_length,
)
from telegram_bridge.management.commands import runbridge
from tests.telegram_bridge.harness.world import (
    World,
    answered,
    inbound,
    is_done,
    outbox_enqueue_async,
    running,
    status,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)

BOT = make_user(7000, "Assistant", username="aisystem_bot", bot=True, is_self=True)
ALICE = make_user(1001, "Alice", username="alice")
BOB = make_user(1002, "Bob", username="bob")
CAROL = make_user(1003, "Carol")
DAVE = make_user(1004, "Dave")
PRIVATE = private_chat(ALICE)
TEAM = group_chat(2001, "Team")
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
R = raw.functions.messages
SendMessage, EditMessage, SendReaction, SetTyping = (
    R.SendMessage,
    R.EditMessage,
    R.SendReaction,
    R.SetTyping,
)


@pytest.fixture
async def world(fake_claude: FakeClaude) -> AsyncIterator[World]:
    await AccessRule.objects.acreate(action=AccessAction.ALLOW, match_everyone=True)
    session = await TelegramSession.objects.acreate(
        name="default", mode=TelegramSession.Mode.BOT, session_string=session_string(BOT)
    )
    world = World(TelegramHarness(BOT), session, fake_claude)
    yield world
    await world.aclose()


# --- A message and its answer ----------------------------------------------------------------


async def test_a_private_message_is_answered_with_typing_and_reactions(world: World) -> None:
    async with running(world.bridge()):
        question = world.harness.message(PRIVATE, ALICE, "What is 2+2?")

        answers = await answered(world, PRIVATE, question)

    assert answers == ["You said: What is 2+2?"]
    first = world.server.sent(SendMessage, ALICE.id)[0]
    assert first.reply_to.reply_to_msg_id == question.id
    # Whole before the first edit interval: no 🤔, which marks an answer that is showing.
    assert world.reactions(PRIVATE) == ["👀", "👍"]
    typing = world.server.sent(SetTyping, ALICE.id)
    assert typing and isinstance(typing[0].action, raw.types.SendMessageTypingAction)
    assert await status(PRIVATE, question.id) == ("answered", "")
    reply = await Message.objects.aget(direction=Direction.OUTBOUND)
    assert reply.text == "You said: What is 2+2?" and reply.status == "delivered"
    commands = world.server.sent(raw.functions.bots.SetBotCommands)
    assert "help" in [command.command for command in commands[0].commands]


async def test_help_lists_the_commands(world: World) -> None:
    async with running(world.bridge()):
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "/help"))

    assert "/cancel" in answers[0] and "/new" in answers[0]
    assert world.fake.requests == []


# --- Every message type -----------------------------------------------------------------------


async def test_a_photo_goes_to_claude_as_an_image(world: World) -> None:
    media = world.harness.photo(("m", 320, 240, jpeg(900)), ("x", 1280, 960, jpeg(4000)))
    async with running(world.bridge()):
        answers = await answered(
            world, PRIVATE, world.harness.message(PRIVATE, ALICE, "What is this?", media=media)
        )

    assert world.fake.requests[-1].block_types == ["image", "text"]
    (answer,) = answers
    assert "[Photo: 1280x960, 4 KB]" in answer  # the largest size within the limit
    assert answer.endswith("What is this? [attached: 1 image]")


async def test_a_pdf_goes_to_claude_as_a_document(world: World) -> None:
    media = world.harness.document(PDF, "application/pdf", file_name="report.pdf")
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Sum up", media=media))

    assert world.fake.requests[-1].block_types == ["document", "text"]


async def test_a_text_file_is_inlined(world: World) -> None:
    media = world.harness.document(b"print('hello')\n", "text/x-python", file_name="hello.py")
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Review", media=media))

    assert world.fake.requests[-1].block_types == ["text", "text"]
    assert "hello.py" in world.claude_texts()[-1]
    assert "print('hello')" in world.claude_texts()[-1]


async def test_an_archive_gets_a_polite_unsupported_answer(world: World) -> None:
    media = world.harness.document(b"PK\x03\x04" + bytes(60), "application/zip", file_name="a.zip")
    async with running(world.bridge()):
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, media=media))

    assert answers == [
        "I can't read that kind of file. I can read PDFs, text and code files, and JPEG, "
        "PNG, GIF or WebP images."
    ]
    assert world.fake.requests == []
    assert world.server.sent(raw.functions.upload.GetFile) == []  # never downloaded


async def test_a_voice_note_is_answered_not_supported_yet(world: World) -> None:
    async with running(world.bridge()):
        voice = world.harness.message(PRIVATE, ALICE, media=world.harness.voice(4))
        answers = await answered(world, PRIVATE, voice)

    assert answers == ["Voice messages aren't supported yet — please send your question as text."]
    assert world.fake.requests == []


async def test_a_sticker_is_read_as_its_emoji(world: World) -> None:
    async with running(world.bridge()):
        sticker = world.harness.message(PRIVATE, ALICE, media=world.harness.sticker("🦄"))
        await answered(world, PRIVATE, sticker)

    assert "🦄" in world.claude_texts()[-1]
    assert world.fake.requests[-1].block_types == ["text"]


@pytest.mark.parametrize(
    ("media", "described"),
    [
        (location(48.85837, 2.294481), "[Location: 48.85837, 2.29448]"),
        (contact("+15550100", "Grace", "Hopper"), "[Contact: Grace Hopper, +15550100]"),
        (poll("Lunch?", "Pizza", "Salad"), '[Poll: "Lunch?" — options: "Pizza", "Salad"]'),
    ],
    ids=["location", "contact", "poll"],
)
async def test_locations_contacts_and_polls_are_described_in_text(
    world: World, media: raw.base.MessageMedia, described: str
) -> None:
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, media=media))

    assert described in world.claude_texts()[-1]


async def test_an_album_is_one_request_with_every_image(world: World) -> None:
    h = world.harness
    parts = [h.message(PRIVATE, ALICE, "Compare these", media=h.photo(("x", 800, 600, jpeg(3000))))]
    parts.append(h.message(PRIVATE, ALICE, media=h.photo(("x", 800, 600, jpeg(3100)))))
    for part in parts:
        part.grouped_id = 777
    async with running(world.bridge()):
        for part in parts:
            await h.push(part)
        await until(lambda: is_done(PRIVATE, parts[0].id))

    assert len(world.fake.requests) == 1
    assert world.fake.requests[0].block_types == ["image", "image", "text"]
    (answer,) = world.screen(PRIVATE)
    assert answer.endswith("Compare these [attached: 2 images]")


async def test_a_group_is_answered_only_when_mentioned(world: World) -> None:
    h = world.harness
    async with running(world.bridge()):
        chatter = h.message(TEAM, BOB, "lunch at noon?")
        assert await answered(world, TEAM, chatter) == []
        text = "@aisystem_bot what time is it?"
        mention = entity(text, "@aisystem_bot", raw.types.MessageEntityMention)
        question = h.message(TEAM, BOB, text, entities=[mention])
        answers = await answered(world, TEAM, question)

    assert await status(TEAM, chatter.id) == ("ignored", "not_addressed")
    assert answers == ["You said: what time is it?"]
    assert world.reactions(TEAM).count("👀") == 1  # nothing for the message not addressed to us


# --- Concurrency and order --------------------------------------------------------------------


async def test_chats_run_concurrently_and_each_chat_is_answered_in_order(world: World) -> None:
    h = world.harness
    chats = [PRIVATE, private_chat(BOB), private_chat(CAROL), private_chat(DAVE)]
    world.fake.set_scenario(Scenario(name="quick", time_to_first_token=0.02))
    world.fake.set_scenario(Scenario(name="slow", time_to_first_token=0.8), times=1)
    sent: dict[int, list[raw.types.Message]] = {chat.chat_id: [] for chat in chats}
    async with running(world.bridge()):
        for turn in range(3):
            for chat in chats:
                message = h.message(chat, chat.entity, f"chat {chat.chat_id} message {turn}")
                sent[chat.chat_id].append(message)
                await h.push(message)
                if not world.fake.requests:  # Alice's first question gets the slow answer
                    await until(lambda: world.fake.requests)
        last = [messages[-1] for messages in sent.values()]
        await until(
            lambda: all(world.answers_to(c, m.id) for c, m in zip(chats, last, strict=True))
        )

    for chat in chats:
        replies = [r.reply_to.reply_to_msg_id for r in world.server.sent(SendMessage, chat.chat_id)]
        assert replies == [message.id for message in sent[chat.chat_id]]
        assert world.screen(chat) == [f"You said: {m.message}" for m in sent[chat.chat_id]]
    answered_chats = [request.peer.user_id for request in world.server.sent(SendMessage)]
    # Bob, Carol and Dave were answered while Alice's first answer was still on its way.
    assert answered_chats.index(ALICE.id) >= 3


# --- Streaming, splitting, formatting, flood waits ------------------------------------------


async def test_streamed_edits_are_spaced_by_the_edit_interval(world: World) -> None:
    words = " ".join(f"word{n}" for n in range(60))
    world.fake.set_scenario(Scenario(name="streaming", reply_text=words, tokens_per_second=60))
    async with running(world.bridge()) as bridge:
        assert bridge.transport is not None
        bridge.transport.edit_interval_seconds = 0.25
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Count"))

    assert world.screen(PRIVATE) == [words]
    edits = [(at, e) for at, e in world.server.timed(EditMessage, ALICE.id) if e.message]
    streamed = [at for at, _ in edits[:-1]]  # the last edit is the final text: never held back
    assert len(streamed) >= 2, "the reply should have grown in several edits"
    gaps = [later - earlier for earlier, later in itertools.pairwise(streamed)]
    assert min(gaps) >= 0.25
    (sent_at, _), (last_at, _) = world.server.timed(SendMessage, ALICE.id)[0], edits[-1]
    assert len(edits) <= (last_at - sent_at) / 0.25 + 2


async def test_a_long_reply_is_split_into_messages_telegram_accepts(world: World) -> None:
    paragraph = "Emoji 😀👍🏽 count double in UTF-16, so this line is longer than it looks. " * 12
    reply = "\n\n".join(f"{n}. {paragraph.strip()}" for n in range(12))
    world.fake.set_scenario(Scenario(name="long", reply_text=reply))
    await Workspace.objects.acreate(slug="long", name="Long", is_default=True, max_tokens=8000)
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Tell me a lot"))

    shown = world.screen(PRIVATE)
    assert len(shown) >= 3
    assert all(utf16_length(text) <= 4096 for text in shown)
    requests = world.server.sent(SendMessage) + world.server.sent(EditMessage)
    assert all(utf16_length(request.message or "") <= 4096 for request in requests)
    assert " ".join(" ".join(shown).split()) == " ".join(reply.split())


async def test_rejected_entities_are_resent_as_plain_text(world: World) -> None:
    world.fake.set_scenario(Scenario(name="bold", reply_text="**Careful:** a < b & `c`"))
    world.server.fail(SendMessage, "ENTITY_BOUNDS_INVALID", times=5, when=lambda q: q.entities)
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Compare"))

    attempts = world.server.sent(SendMessage, ALICE.id)
    assert attempts[0].entities  # the HTML version was tried first
    assert not attempts[-1].entities
    assert world.screen(PRIVATE) == ["Careful: a < b & c"]


async def test_a_short_flood_wait_is_slept_and_the_send_retried(world: World) -> None:
    world.server.fail(SendMessage, "FLOOD_WAIT_3", code=420)
    async with running(world.bridge()):
        answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "Hi"))

    assert 3 in world.sleeps
    assert answers == ["You said: Hi"]
    first, retry = world.server.sent(SendMessage, ALICE.id)[:2]
    assert first.message == retry.message


async def test_a_long_flood_wait_reschedules_the_reply_through_the_outbox(world: World) -> None:
    world.server.fail(SendMessage, "FLOOD_WAIT_120", code=420)
    async with running(world.bridge()):
        question = world.harness.message(PRIVATE, ALICE, "Hi")
        assert await answered(world, PRIVATE, question) == []
        item = await OutboxItem.objects.aget()
        assert (item.status, item.text) == ("pending", "You said: Hi")
        assert item.available_at > timezone.now() + timedelta(seconds=100)
        assert 120 not in world.sleeps  # nobody waited in line

        # Two minutes later, the bridge's outbox sender delivers it.
        await OutboxItem.objects.filter(pk=item.pk).aupdate(available_at=timezone.now())
        await until(lambda: OutboxItem.objects.filter(status="sent").aexists(), timeout=5)

    assert world.answers_to(PRIVATE, question.id) == ["You said: Hi"]
    assert (await OutboxItem.objects.aget()).status == "sent"


# --- Stopping an answer -------------------------------------------------------------------------

SLOW_STREAM = Scenario(
    name="slow-stream", reply_text=" ".join(f"w{n}" for n in range(200)), tokens_per_second=40
)


async def test_cancel_stops_the_reply_being_streamed(world: World) -> None:
    world.fake.set_scenario(SLOW_STREAM)
    h = world.harness
    async with running(world.bridge()):
        question = h.message(PRIVATE, ALICE, "Write a lot")
        await h.push(question)
        await until(lambda: world.answers_to(PRIVATE, question.id))
        cancel = h.message(PRIVATE, ALICE, "/cancel")
        assert await answered(world, PRIVATE, cancel) == ["Stopped."]
        await until(lambda: is_done(PRIVATE, question.id))

    (streamed,) = world.answers_to(PRIVATE, question.id)
    assert streamed.startswith("w0") and streamed.endswith("(stopped)")
    assert "w199" not in streamed
    assert await status(PRIVATE, question.id) == ("answered", "cancelled")


async def test_the_stop_button_stops_the_reply_being_streamed(world: World) -> None:
    world.fake.set_scenario(SLOW_STREAM)
    h = world.harness
    async with running(world.bridge()):
        question = h.message(PRIVATE, ALICE, "Write a lot")
        await h.push(question)
        await until(lambda: world.server.sent(SendMessage, ALICE.id))
        placeholder = world.server.sent(SendMessage, ALICE.id)[0]
        (button,) = placeholder.reply_markup.rows[0].buttons
        assert (button.text, button.type.data) == ("⏹ Stop", f"stop:{ALICE.id}".encode())
        shown_id = world.outgoing(PRIVATE)[0].id
        await h.push_press(ALICE, PRIVATE, shown_id, button.type.data)
        await until(lambda: is_done(PRIVATE, question.id))

    (answer,) = world.server.sent(raw.functions.messages.SetBotCallbackAnswer)
    assert answer.message == "Stopping…"
    assert world.screen(PRIVATE)[0].endswith("(stopped)")
    assert world.outgoing(PRIVATE)[0].reply_markup is None  # the button is gone
    assert await status(PRIVATE, question.id) == ("answered", "cancelled")


# --- Shutdown, restart, catch-up -----------------------------------------------------------------


async def test_a_message_cut_by_shutdown_is_answered_once_after_a_restart(world: World) -> None:
    world.fake.set_scenario(Scenario(name="slow", time_to_first_token=3.0), times=1)
    question = world.harness.message(PRIVATE, ALICE, "Are you there?")
    first = world.bridge(shutdown_deadline_seconds=0)
    async with running(first):
        await world.harness.push(question)
        await until(lambda: world.fake.requests)  # Claude is thinking…
    assert await status(PRIVATE, question.id) == ("interrupted", "shutdown")
    assert world.answers_to(PRIVATE, question.id) == []

    second = world.bridge()  # a new process: a new client on the stored session and peers
    async with running(second):
        await until(lambda: is_done(PRIVATE, question.id))
        assert await second.resume_interrupted() == 0

    assert world.answers_to(PRIVATE, question.id) == ["You said: Are you there?"]
    assert await status(PRIVATE, question.id) == ("answered", "")
    assert len(world.fake.requests) == 2
    assert await Message.objects.filter(direction=Direction.OUTBOUND).acount() == 1


async def test_catch_up_answers_what_is_in_the_look_back_once(world: World) -> None:
    h = world.harness
    in_window = h.message(PRIVATE, ALICE, "sent while you were away", date=now() - 600)
    too_old = h.message(PRIVATE, ALICE, "sent yesterday", date=now() - 2 * 3600)
    async with running(world.bridge()):
        await h.push(in_window)
        await h.push(in_window)  # Telegram delivers it again
        await h.push(too_old)
        live = h.message(PRIVATE, ALICE, "hello now")
        await answered(world, PRIVATE, live)  # answered after the others: one chat, in order

    assert world.screen(PRIVATE) == ["You said: sent while you were away", "You said: hello now"]
    assert await inbound(PRIVATE, too_old.id).aexists() is False
    assert len(world.fake.requests) == 2


async def test_messages_missed_while_stopped_come_in_through_gap_recovery(world: World) -> None:
    h = world.harness
    async with running(world.bridge()):
        await answered(world, PRIVATE, h.message(PRIVATE, ALICE, "hello"))
    missed = h.message(PRIVATE, ALICE, "are you back?", date=now() - 120)
    world.server.missed.append(missed)

    async with running(world.bridge()):
        await until(lambda: is_done(PRIVATE, missed.id))

    assert world.answers_to(PRIVATE, missed.id) == ["You said: are you back?"]
    assert world.server.sent(raw.functions.updates.GetDifference)


# --- The outbox --------------------------------------------------------------------------------


async def test_the_outbox_is_drained_and_each_item_marked_sent_once(world: World) -> None:
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "remind me"))
        chat_pk = await Message.objects.values_list("chat_id", flat=True).afirst()
        assert chat_pk is not None
        await outbox_enqueue_async(chat_pk, "**Reminder:** stretch", key="test:reminder")
        await until(lambda: OutboxItem.objects.filter(status="sent").aexists(), timeout=5)
        await asyncio.sleep(1.2)  # another drain cycle of the sender

    item = await OutboxItem.objects.aget()
    reminders = [r for r in world.server.sent(SendMessage) if r.message == "Reminder: stretch"]
    assert len(reminders) == 1 and [type(e) for e in reminders[0].entities] == [
        raw.types.MessageEntityBold
    ]
    assert item.sent_transport_message_id == str(world.outgoing(PRIVATE)[-1].id)


async def test_a_stop_during_an_outbox_delivery_lets_it_finish(world: World) -> None:
    bridge = world.bridge()
    long_notice = "\n\n".join(f"Part {n}: " + "lorem ipsum " * 300 for n in range(3))

    def stop_at_the_first_part(request: object) -> None:
        if isinstance(request, SendMessage) and request.message.startswith("Part 0"):
            bridge.shutdown.request_stop()  # SIGTERM, just as the notice starts going out

    async with running(bridge):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "hi"))
        world.server.on_request = stop_at_the_first_part
        chat_pk = await Message.objects.values_list("chat_id", flat=True).afirst()
        assert chat_pk is not None
        await outbox_enqueue_async(chat_pk, long_notice)
        await asyncio.wait_for(bridge.shutdown.stopping.wait(), 5)

    item = await OutboxItem.objects.aget()
    assert item.status == "sent"  # not left "sending", to be sent again whole at the next start
    parts = [r.message for r in world.server.sent(SendMessage) if r.message.startswith("Part")]
    assert [part[:6] for part in parts] == ["Part 0", "Part 1", "Part 2"]


# --- Bad input --------------------------------------------------------------------------------

ODD_UNICODE = (
    "\u05e9\u05dc\u05d5\u05dd \u202eevil\u202c a\u200bb\u200d\ufeff "
    "e\u0301\u0302\u0303 👩‍👩‍👧‍👦 🏳️‍🌈 🇺🇳 "
)


async def test_bad_input_gets_a_clear_answer_or_silence_and_never_stops_the_bridge(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    h = world.harness
    long_text = (ODD_UNICODE * 200)[:4096]
    too_large = h.document(b"x" * 100, "text/plain", file_name="huge.txt", downloadable=False)
    too_large.document.size = 50 * 1024 * 1024
    inputs = [
        ("unknown media", h.message(PRIVATE, ALICE, media=dice())),
        ("empty", h.message(PRIVATE, ALICE, "")),
        ("odd unicode", h.message(PRIVATE, ALICE, long_text)),
        ("caption without text", h.message(PRIVATE, ALICE, media=h.photo(("x", 9, 9, jpeg(99))))),
        ("over the size limit", h.message(PRIVATE, ALICE, media=too_large)),
    ]
    caplog.set_level(logging.INFO)
    async with running(world.bridge()):
        await h.push_update(
            raw.types.UpdateReadHistoryInbox(
                peer=PRIVATE.peer, max_id=1, still_unread_count=0, pts=1, pts_count=1
            )
        )
        for _, message in inputs:
            await h.push(message)
        after = await answered(world, PRIVATE, h.message(PRIVATE, ALICE, "still there?"))

    answers = {name: world.answers_to(PRIVATE, message.id) for name, message in inputs}
    assert answers["unknown media"] == [
        "I can't handle this kind of message yet. Please send text, a photo or a document."
    ]
    assert answers["empty"] == [] and "nothing in it" in caplog.text
    assert "".join(answers["odd unicode"]).replace("\n", "").startswith("You said: ")
    assert all(utf16_length(part) <= 4096 for part in answers["odd unicode"])
    (photo_answer,) = answers["caption without text"]
    assert photo_answer.endswith("(The user sent a photo without a caption.) [attached: 1 image]")
    assert answers["over the size limit"] == [
        "That file is too large for me to read. Please send a smaller one, or paste the part "
        "you need as text."
    ]
    assert after == ["You said: still there?"]
    ours = ("telegram_bridge", "pipeline", "pyrogram")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(ours)]


# --- The session and the heartbeat -------------------------------------------------------------


async def test_a_revoked_session_stops_the_bridge_with_an_alert_and_no_retry(
    world: World,
) -> None:
    world.server.fail(raw.functions.updates.GetState, "AUTH_KEY_UNREGISTERED", code=401)
    bridge = world.bridge()

    code = await asyncio.wait_for(bridge.run(), 10)

    assert code == EXIT_REVOKED
    assert len(world.server.requests) == 1
    await world.session.arefresh_from_db()
    assert world.session.state == "revoked"
    alert = await Event.objects.filter(kind="bridge.revoked").aget()
    assert alert.level == "error"


async def test_an_unreachable_telegram_is_retried_with_backoff_until_it_answers(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.server.refused_connections = 3
    with caplog.at_level(logging.WARNING, logger="telegram_bridge.connection"):
        async with running(world.bridge()):
            answers = await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "up?"))

    assert answers == ["You said: up?"]
    retries = [r.getMessage() for r in caplog.records if r.name == "telegram_bridge.connection"]
    assert [message.rsplit(" ", 2)[-2] for message in retries] == ["0.05", "0.1", "0.1"]
    assert all("Connection refused" in message for message in retries)
    kinds = [kind async for kind in Event.objects.order_by("id").values_list("kind", flat=True)]
    bridge_kinds = [kind for kind in kinds if kind.startswith("bridge.")]
    assert bridge_kinds == [
        "bridge.connecting",
        "bridge.down",
        "bridge.up",
        "bridge.stopped",
    ]


async def test_a_stop_while_telegram_is_unreachable_ends_the_bridge_cleanly(
    world: World,
) -> None:
    world.server.refused_connections = 1000
    bridge = world.bridge(connect_backoff_seconds=(0.05,))
    task = asyncio.create_task(bridge.run())
    await until(lambda: world.server.refused_connections < 998)  # retrying
    bridge.shutdown.request_stop()

    assert await asyncio.wait_for(task, 10) == EXIT_OK
    await world.session.arefresh_from_db()
    assert (world.session.state, world.session.runner) == ("stopped", "")


async def test_the_heartbeat_records_the_account_and_the_last_update(world: World) -> None:
    async with running(world.bridge()):
        await answered(world, PRIVATE, world.harness.message(PRIVATE, ALICE, "ping"))
        await world.session.arefresh_from_db()
        assert (world.session.state, world.session.account_user_id) == ("connected", BOT.id)
        assert world.session.account_username == "aisystem_bot"
        assert world.session.heartbeat_at is not None

        async def last_update_recorded() -> bool:
            await world.session.arefresh_from_db()
            return world.session.last_update_at is not None

        await until(last_update_recorded, timeout=3)
        assert world.session.lag_seconds is not None and world.session.in_flight == 0

    await world.session.arefresh_from_db()
    assert world.session.state == "stopped"
    kinds = [kind async for kind in Event.objects.order_by("id").values_list("kind", flat=True)]
    bridge_kinds = [kind for kind in kinds if kind.startswith("bridge.")]
    assert bridge_kinds == ["bridge.connecting", "bridge.up", "bridge.stopped"]


# --- python manage.py runbridge ----------------------------------------------------------------


def runbridge_command(*args: str) -> None:
    """``manage.py runbridge``; its ORM calls run in asgiref's thread, whose connection is
    closed afterwards (PostgreSQL could not drop the test database otherwise)."""
    try:
        call_command("runbridge", *args)
    finally:
        asyncio.run(sync_to_async(connections.close_all)())


def test_runbridge_without_a_session_says_how_to_sign_in() -> None:
    with pytest.raises(CommandError, match="telegram_login") as raised:
        runbridge_command("--session", "nobody")

    assert raised.value.returncode == 2


def test_runbridge_exits_3_when_telegram_has_revoked_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = FakeTelegram(BOT)
    server.fail(raw.functions.updates.GetState, "SESSION_REVOKED", code=401)
    TelegramSession.objects.create(
        name="default", mode=TelegramSession.Mode.BOT, session_string=session_string(BOT)
    )

    def client_for_session(session: TelegramSession, config: BridgeConfig) -> HarnessClient:
        storage = DatabaseStorage(session_pk=session.pk, session_string=session.session_string)
        return HarnessClient(server, storage_engine=storage, skip_updates=False)

    monkeypatch.setattr(runbridge, "client_for_session", client_for_session)
    with pytest.raises(CommandError, match="revoked") as raised:
        runbridge_command()

    assert raised.value.returncode == 3
    assert len(server.requests) == 1
    assert TelegramSession.objects.get().state == "revoked"
