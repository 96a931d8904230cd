"""``TelegramTransport`` through real Pyrogram methods; assertions on the raw requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pyrogram import errors, raw, types

from pipeline.formatting import render_for_telegram
from pipeline.response_manager import ResponseManager, StreamingReply
from pipeline.types import FormattingRejected, OutboundMedia
from telegram_bridge.faketelegram import TelegramHarness
from telegram_bridge.faketelegram.builders import jpeg, make_user, private_chat, supergroup_chat
from telegram_bridge.transport import (
    FloodWaitTooLong,
    OutboundLimiter,
    TelegramTransport,
    stop_callback_chat,
)

BOT = make_user(7000, "Assistant", username="aisystem_bot", bot=True, is_self=True)
ALICE = make_user(1001, "Alice", username="alice")
CHAT = str(ALICE.id)
SendMessage = raw.functions.messages.SendMessage
EditMessage = raw.functions.messages.EditMessage


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
async def harness() -> AsyncIterator[TelegramHarness]:
    harness = TelegramHarness(BOT)
    await harness.start()
    await harness.meet(private_chat(ALICE))
    yield harness
    await harness.stop()


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def make_transport(
    harness: TelegramHarness, time: FakeTime, *, stop_button: bool = False
) -> TelegramTransport:
    limiter = OutboundLimiter(clock=time.clock, sleep=time.sleep)
    return TelegramTransport(
        harness.client, limiter=limiter, sleep=time.sleep, stop_button=stop_button
    )


@pytest.fixture
def transport(harness: TelegramHarness, time: FakeTime) -> TelegramTransport:
    return make_transport(harness, time)


def last(harness: TelegramHarness, function: type) -> object:
    return harness.server.sent(function)[-1]


# --- Text and formatting ------------------------------------------------------------------


async def test_html_goes_out_with_entities_parsed_by_pyrogram(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    (html,) = render_for_telegram("**Hi** there\n\n```python\nprint(1 < 2)\n```")

    message_id = await transport.send_text(CHAT, html)

    request = last(harness, SendMessage)
    assert request.message == "Hi there\n\nprint(1 < 2)"
    bold, pre = request.entities
    assert (type(bold), bold.offset, bold.length) == (raw.types.MessageEntityBold, 0, 2)
    assert isinstance(pre, raw.types.MessageEntityPre)
    assert (pre.offset, pre.length, pre.language) == (10, 12, "python")
    assert harness.server.messages[(0, int(message_id))].out


async def test_a_reply_goes_out_as_a_reply(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    await transport.send_text(CHAT, "answer", reply_to="42")

    assert last(harness, SendMessage).reply_to.reply_to_msg_id == 42


async def test_a_reply_to_a_deleted_message_goes_out_without_the_reference(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    harness.server.fail(SendMessage, "REPLY_MESSAGE_ID_INVALID")

    message_id = await transport.send_text(CHAT, "answer", reply_to="42")

    refused, sent = harness.server.sent(SendMessage)
    assert refused.reply_to.reply_to_msg_id == 42 and sent.reply_to is None
    assert message_id.isdigit()


async def test_a_supergroup_chat_id_reaches_the_channel(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    group = supergroup_chat(3001, "Big")
    await harness.meet(group)

    await transport.send_text(str(group.chat_id), "hello group")

    peer = last(harness, SendMessage).peer
    assert isinstance(peer, raw.types.InputPeerChannel) and peer.channel_id == 3001


@pytest.mark.parametrize(
    "error", ["ENTITY_BOUNDS_INVALID", "ENTITIES_TOO_LONG", "MESSAGE_EMPTY", "ENTITY_NEW_KIND"]
)
async def test_entities_telegram_rejects_raise_formatting_rejected(
    harness: TelegramHarness,
    transport: TelegramTransport,
    error: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # Pyrogram appends errors it does not know to ./unknown_errors.txt
    harness.server.fail(SendMessage, error)

    with pytest.raises(FormattingRejected):
        await transport.send_text(CHAT, "<b>bold</b>")


async def test_the_reply_falls_back_to_plain_text_when_entities_are_rejected(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    harness.server.fail(SendMessage, "ENTITY_BOUNDS_INVALID")

    result = await ResponseManager().deliver(transport, CHAT, "**a < b** & [docs](https://x.org)")

    assert result.delivered and result.plain_fallback
    first, second = harness.server.sent(SendMessage)
    assert first.entities and not second.entities
    assert second.message == "a < b & docs (https://x.org)"


async def test_plain_text_goes_out_without_entities(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    await transport.send_text(CHAT, "if a < b && c > d")
    await transport.send_text(CHAT, "<b>shown as typed</b>", plain=True)

    first, second = harness.server.sent(SendMessage)
    assert (first.message, second.message) == ("if a < b && c > d", "<b>shown as typed</b>")
    assert not first.entities and not second.entities


async def test_an_edit_replaces_the_text(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    message_id = await transport.send_text(CHAT, "draft")

    await transport.edit_text(CHAT, message_id, "<i>final</i>")

    request = last(harness, EditMessage)
    assert (request.id, request.message) == (int(message_id), "final")
    assert [type(item) for item in request.entities] == [raw.types.MessageEntityItalic]


async def test_an_edit_that_changes_nothing_is_not_an_error(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    message_id = await transport.send_text(CHAT, "same")

    await transport.edit_text(CHAT, message_id, "same")  # Telegram: MESSAGE_NOT_MODIFIED

    assert len(harness.server.sent(EditMessage)) == 1


# --- Flood waits and the limiter ----------------------------------------------------------


async def test_a_short_flood_wait_is_slept_and_retried(
    harness: TelegramHarness, transport: TelegramTransport, time: FakeTime
) -> None:
    harness.server.fail(SendMessage, errors.FloodWait(value=5))

    message_id = await transport.send_text(CHAT, "patience")

    assert 5 in time.sleeps
    assert len(harness.server.sent(SendMessage)) == 2 and message_id


async def test_a_long_flood_wait_raises_flood_wait_too_long(
    harness: TelegramHarness, transport: TelegramTransport, time: FakeTime
) -> None:
    harness.server.fail(SendMessage, "FLOOD_WAIT_120", code=420)

    with pytest.raises(FloodWaitTooLong) as raised:
        await transport.send_text(CHAT, "later")

    assert raised.value.seconds == 120 and not raised.value.permanent
    assert 120 not in time.sleeps
    assert len(harness.server.sent(SendMessage)) == 1


async def test_a_second_flood_wait_gives_up(
    harness: TelegramHarness, transport: TelegramTransport, time: FakeTime
) -> None:
    harness.server.fail(EditMessage, "FLOOD_WAIT_3", code=420, times=2)
    message_id = await transport.send_text(CHAT, "one")

    with pytest.raises(FloodWaitTooLong) as raised:
        await transport.edit_text(CHAT, message_id, "two")

    assert raised.value.seconds == 3
    assert time.sleeps.count(3) == 1


def test_the_limiter_spaces_messages_in_one_chat_a_second_apart(time: FakeTime) -> None:
    limiter = OutboundLimiter(clock=time.clock, sleep=time.sleep)

    delays = [limiter.reserve("1") for _ in range(3)]

    assert delays == [0.0, 1.0, 2.0]


def test_the_limiter_keeps_bots_to_30_messages_a_second(time: FakeTime) -> None:
    limiter = OutboundLimiter.for_account(is_bot=True, clock=time.clock, sleep=time.sleep)

    delays = [limiter.reserve(str(chat)) for chat in range(60)]

    assert sum(delay < 0.999 for delay in delays) == 30  # 0, 1/30, …, 29/30
    assert delays[59] == pytest.approx(59 / 30)


def test_a_user_account_is_limited_per_chat_only(time: FakeTime) -> None:
    limiter = OutboundLimiter.for_account(is_bot=False, clock=time.clock, sleep=time.sleep)

    delays = [limiter.reserve(str(chat)) for chat in range(60)]

    assert delays == [0.0] * 60
    assert limiter.reserve("0") == 1.0


async def test_sends_and_edits_share_the_chat_limit(
    transport: TelegramTransport, time: FakeTime
) -> None:
    message_id = await transport.send_text(CHAT, "one")
    await transport.edit_text(CHAT, message_id, "two")
    await transport.send_text(CHAT, "three")

    assert time.sleeps == [1.0, 1.0]


# --- Typing, reactions, media ------------------------------------------------------------------


async def test_typing_sends_the_typing_action(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    await transport.send_typing(CHAT)

    request = last(harness, raw.functions.messages.SetTyping)
    assert isinstance(request.action, raw.types.SendMessageTypingAction)
    assert request.peer.user_id == ALICE.id


async def test_a_reaction_is_set_and_cleared(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    await transport.react(CHAT, "100", "👀")
    await transport.react(CHAT, "100", None)

    set_, cleared = harness.server.sent(raw.functions.messages.SendReaction)
    assert set_.msg_id == 100
    assert [reaction.emoticon for reaction in set_.reaction] == ["👀"]
    assert not cleared.reaction


async def test_reactions_and_typing_take_slots_of_the_one_budget(
    harness: TelegramHarness, transport: TelegramTransport, time: FakeTime
) -> None:
    await transport.react(CHAT, "100", "👀")
    await transport.send_typing(CHAT)
    await transport.send_text(CHAT, "hello")
    await transport.react(CHAT, "100", "👍")

    assert time.sleeps == pytest.approx([1 / 30] * 3)  # one slot of 30 a second each
    assert transport.limiter.admitted == 4
    sent = harness.server.requests[-4:]
    assert [type(r).__name__ for r in sent] == [
        "SendReaction",
        "SetTyping",
        "SendMessage",
        "SendReaction",
    ]


async def test_typing_and_passing_reactions_are_dropped_first_when_the_budget_is_tight(
    harness: TelegramHarness, transport: TelegramTransport, time: FakeTime
) -> None:
    for chat in range(30):  # a burst elsewhere books the next second of the budget
        transport.limiter.reserve(f"-100{chat}")
    before = len(harness.server.requests)

    await transport.react(CHAT, "100", "👀")
    await transport.send_typing(CHAT)
    await transport.react(CHAT, "100", "🤔")
    assert len(harness.server.requests) == before  # dropped, nothing waited for
    assert time.sleeps == []

    await transport.send_text(CHAT, "the answer")
    await transport.react(CHAT, "100", "👍")  # the final state waits its turn

    assert [type(r).__name__ for r in harness.server.requests[before:]] == [
        "SendMessage",
        "SendReaction",
    ]
    assert time.sleeps == pytest.approx([1.0, 1 / 30])
    assert transport.limiter.dropped == 3


@pytest.mark.parametrize(
    ("error", "code"),
    [("REACTION_INVALID", 400), ("REACTION_EMPTY", 400), ("CHAT_WRITE_FORBIDDEN", 403)],
)
async def test_reaction_refusals_are_logged_not_raised(
    harness: TelegramHarness, transport: TelegramTransport, error: str, code: int, caplog
) -> None:
    harness.server.fail(raw.functions.messages.SendReaction, error, code=code)

    with caplog.at_level("INFO", logger="telegram_bridge.transport"):
        await transport.react(CHAT, "100", "🤔")

    assert error in caplog.text


async def test_a_photo_and_a_document_are_uploaded_and_sent(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    photo_id = await transport.send_media(
        CHAT, OutboundMedia("photo", jpeg(2_000)), caption="<b>chart</b>", reply_to="7"
    )
    await transport.send_media(CHAT, OutboundMedia("document", b"a,b\n1,2\n", "data.csv"))

    photo, document = harness.server.sent(raw.functions.messages.SendMedia)
    assert isinstance(photo.media, raw.types.InputMediaUploadedPhoto)
    assert (photo.message, photo.reply_to.reply_to_msg_id) == ("chart", 7)
    assert [type(item) for item in photo.entities] == [raw.types.MessageEntityBold]
    assert isinstance(document.media, raw.types.InputMediaUploadedDocument)
    names = [a.file_name for a in document.media.attributes if hasattr(a, "file_name")]
    assert names == ["data.csv"]
    uploaded = [part.bytes for part in harness.server.sent(raw.functions.upload.SaveFilePart)]
    assert uploaded == [jpeg(2_000), b"a,b\n1,2\n"]
    assert photo_id.isdigit()


# --- The Stop button -----------------------------------------------------------------------------


def stop_data(request: object) -> list[bytes]:
    markup = getattr(request, "reply_markup", None)
    if markup is None:
        return []
    return [button.type.data for row in markup.rows for button in row.buttons]


async def test_a_streamed_reply_shows_a_stop_button_until_its_final_edit(
    harness: TelegramHarness, time: FakeTime
) -> None:
    transport = make_transport(harness, time, stop_button=True)
    stream = StreamingReply(ResponseManager(), transport, CHAT, reply_to=None, clock=time.clock)

    transport.mark_streaming(CHAT, True)
    await stream.update("Thinking")
    time.now += 5
    await stream.update("Thinking about it")
    transport.mark_streaming(CHAT, False)
    result = await stream.finish("Thinking about it: **done**")
    await transport.clear_stop_button(CHAT)

    (sent,) = harness.server.sent(SendMessage)
    streamed, final = harness.server.sent(EditMessage)
    assert stop_data(sent) == [f"stop:{CHAT}".encode()]
    assert sent.reply_markup.rows[0].buttons[0].text == "⏹ Stop"
    assert stop_data(streamed) == [f"stop:{CHAT}".encode()]
    assert stop_data(final) == [] and final.message == "Thinking about it: done"
    assert result.delivered


async def test_the_stop_button_is_removed_when_the_final_text_did_not_change(
    harness: TelegramHarness, time: FakeTime
) -> None:
    transport = make_transport(harness, time, stop_button=True)
    transport.mark_streaming(CHAT, True)
    message_id = await transport.send_text(CHAT, "all of it")
    transport.mark_streaming(CHAT, False)

    await transport.clear_stop_button(CHAT)
    await transport.clear_stop_button(CHAT)  # nothing left to remove

    (removal,) = harness.server.sent(EditMessage)
    assert (removal.id, removal.message, removal.reply_markup) == (int(message_id), None, None)


async def test_pressing_stop_names_the_chat(harness: TelegramHarness, time: FakeTime) -> None:
    transport = make_transport(harness, time, stop_button=True)
    transport.mark_streaming(CHAT, True)
    message_id = await transport.send_text(CHAT, "streaming…")

    query = await harness.press(
        ALICE, private_chat(ALICE), int(message_id), f"stop:{CHAT}".encode()
    )

    assert isinstance(query, types.CallbackQuery)
    assert stop_callback_chat(query.data) == CHAT
    assert stop_callback_chat("something else") is None


async def test_no_stop_button_unless_enabled(
    harness: TelegramHarness, transport: TelegramTransport
) -> None:
    transport.mark_streaming(CHAT, True)

    await transport.send_text(CHAT, "hello")

    assert stop_data(last(harness, SendMessage)) == []
