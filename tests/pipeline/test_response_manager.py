"""The response manager: what a user sees in the chat for a reply, streamed or not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

import pipeline.response_manager
from pipeline.formatting import normalize_html, utf16_len, visible_text
from pipeline.response_manager import (
    ResponseManager,
    StreamingReply,
    format_parts,
    plain_parts,
)
from pipeline.types import FormattingRejected
from tests.fakes.transport import RecordingTransport

CHAT = "10"
USER_MESSAGE = "77"


def paragraphs(count: int, *, words: int = 30) -> str:
    """``count`` numbered Markdown paragraphs, each with a findable label."""
    return "\n\n".join(
        f"Paragraph {index}: " + " ".join(["lorem"] * words) for index in range(count)
    )


def labels_in(texts: list[str]) -> list[str]:
    return [word for text in texts for word in visible_text(text).split() if word.endswith(":")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def streaming(transport: RecordingTransport, clock: FakeClock) -> StreamingReply:
    return StreamingReply(ResponseManager(), transport, CHAT, reply_to=USER_MESSAGE, clock=clock)


class MessageNotModified(Exception):
    """What Telegram answers (400 MESSAGE_NOT_MODIFIED) to an edit that changes nothing."""


class TelegramLikeTransport(RecordingTransport):
    """Refuses an edit that would leave the message as it is, as Telegram does."""

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        current = next(s for s in self.sent if s.message_id == message_id)
        if current.final_text == text:
            raise MessageNotModified("message is not modified")
        await super().edit_text(chat_id, message_id, text)


class OfflineTransport(RecordingTransport):
    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        raise ConnectionError("network is unreachable")

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        raise ConnectionError("network is unreachable")

    async def send_typing(self, chat_id: str) -> None:
        self.typing += 1
        raise ConnectionError("network is unreachable")

    async def react(self, chat_id: str, message_id: str, emoji: str | None) -> None:
        raise ConnectionError("network is unreachable")


class RefusesEverythingTransport(RecordingTransport):
    async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
        raise FormattingRejected("can't parse entities")


class FirstEditFailsTransport(RecordingTransport):
    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.failed_edits = 0

    async def edit_text(self, chat_id: str, message_id: str, text: str) -> None:
        if not self.failed_edits:
            self.failed_edits += 1
            raise TimeoutError("edit timed out")
        await super().edit_text(chat_id, message_id, text)


# --- format_parts and plain_parts ------------------------------------------------------------


def test_a_telegram_reply_is_formatted_as_telegram_html() -> None:
    parts = format_parts("**Hello** and `code`", RecordingTransport())

    assert parts == ["<b>Hello</b> and <code>code</code>"]


def test_a_blank_reply_has_no_parts() -> None:
    assert format_parts("  \n\n ", RecordingTransport()) == []


def test_a_markdown_transport_gets_the_text_as_is_and_unsplit_without_a_limit() -> None:
    transport = RecordingTransport(max_message_length=0)
    transport.text_format = "markdown"
    text = "**Hello** <b>" + " word" * 2000

    assert format_parts(text, transport) == [text]


def test_the_plain_version_drops_the_markup_and_shows_link_targets() -> None:
    text = "**Hello**, read [the docs](https://example.com/docs)."

    assert plain_parts(text, RecordingTransport()) == [
        "Hello, read the docs (https://example.com/docs)."
    ]


# --- deliver --------------------------------------------------------------------------------


async def test_a_short_reply_is_one_message_answering_the_users_message() -> None:
    transport = RecordingTransport()

    result = await ResponseManager().deliver(transport, CHAT, "**Hi** there", reply_to=USER_MESSAGE)

    assert transport.texts == ["<b>Hi</b> there"]
    assert transport.sent[0].reply_to == USER_MESSAGE
    assert result.delivered
    assert result.parts == 1
    assert result.transport_message_ids == (transport.sent[0].message_id,)
    assert not result.plain_fallback


async def test_a_blank_reply_sends_nothing() -> None:
    transport = RecordingTransport()

    result = await ResponseManager().deliver(transport, CHAT, "   ", reply_to=USER_MESSAGE)

    assert transport.sent == []
    assert result.parts == 0


async def test_a_long_reply_is_split_into_messages_within_the_limit_losing_nothing() -> None:
    transport = RecordingTransport()
    text = paragraphs(60)  # about 11,000 characters

    result = await ResponseManager().deliver(transport, CHAT, text, reply_to=USER_MESSAGE)

    assert len(transport.sent) >= 3
    assert all(utf16_len(visible_text(part)) <= 4096 for part in transport.texts)
    assert labels_in(transport.texts) == [f"{index}:" for index in range(60)]
    assert result.delivered
    assert result.parts == len(transport.sent)
    assert result.transport_message_ids == tuple(sent.message_id for sent in transport.sent)


async def test_only_the_first_part_of_a_long_reply_answers_the_users_message() -> None:
    transport = RecordingTransport()

    await ResponseManager().deliver(transport, CHAT, paragraphs(60), reply_to=USER_MESSAGE)

    assert [sent.reply_to for sent in transport.sent] == [USER_MESSAGE] + [None] * (
        len(transport.sent) - 1
    )


async def test_a_caption_sized_transport_gets_parts_of_at_most_1024() -> None:
    transport = RecordingTransport(max_message_length=1024)

    await ResponseManager().deliver(transport, CHAT, paragraphs(20), reply_to=USER_MESSAGE)

    assert len(transport.sent) >= 3
    assert all(utf16_len(visible_text(part)) <= 1024 for part in transport.texts)
    assert labels_in(transport.texts) == [f"{index}:" for index in range(20)]


async def test_a_long_code_block_stays_a_code_block_in_every_part() -> None:
    transport = RecordingTransport()
    code = "\n".join(f"print({index})  # line {index}" for index in range(600))
    text = f"Here it is:\n\n```python\n{code}\n```\n\nThat's all."

    await ResponseManager().deliver(transport, CHAT, text, reply_to=USER_MESSAGE)

    code_parts = [part for part in transport.texts if "print(" in part]
    assert len(code_parts) >= 3
    for part in transport.texts:
        assert normalize_html(part) == part  # balanced, Telegram-valid HTML
        assert part.count("<pre>") == part.count("</pre>")
    for part in code_parts:
        assert part.startswith('<pre><code class="language-python">print(')
        assert "</code></pre>" in part
    shown_code = "\n".join(
        line for part in code_parts for line in visible_text(part).splitlines() if "print(" in line
    )
    assert shown_code == code


async def test_refused_formatting_is_sent_again_as_plain_text() -> None:
    transport = RecordingTransport(reject_html=True)
    text = "**Hello**, read [the docs](https://example.com/docs)."

    result = await ResponseManager().deliver(transport, CHAT, text, reply_to=USER_MESSAGE)

    assert transport.texts == ["Hello, read the docs (https://example.com/docs)."]
    assert transport.sent[0].reply_to == USER_MESSAGE
    assert result.delivered
    assert result.plain_fallback


async def test_formatting_refused_on_the_second_part_edits_the_first_instead_of_repeating_it() -> (
    None
):
    transport = RecordingTransport(reject_html=True, max_message_length=100)
    first = "A plain first paragraph that is long enough to fill most of one small message."
    second = "A **bold** second paragraph that has to go in a message of its own, then."

    result = await ResponseManager().deliver(
        transport, CHAT, f"{first}\n\n{second}", reply_to=USER_MESSAGE
    )

    assert transport.texts == [first, second.replace("**", "")]
    assert [sent.reply_to for sent in transport.sent] == [USER_MESSAGE, None]
    assert result.delivered
    assert result.plain_fallback
    assert result.transport_message_ids == tuple(sent.message_id for sent in transport.sent)


async def test_a_plain_retry_does_not_fail_on_a_first_part_that_needs_no_change() -> None:
    transport = TelegramLikeTransport(reject_html=True, max_message_length=100)
    first = "A plain first paragraph that is long enough to fill most of one small message."
    second = "A **bold** second paragraph that has to go in a message of its own, then."

    result = await ResponseManager().deliver(
        transport, CHAT, f"{first}\n\n{second}", reply_to=USER_MESSAGE
    )

    assert result.delivered
    assert transport.texts == [first, second.replace("**", "")]


async def test_a_plain_retry_with_fewer_parts_empties_the_leftover_messages() -> None:
    transport = RecordingTransport(reject_html=True, max_message_length=20)
    # Wide gaps: each formatted part holds one word, the plain pass (joined by blank lines)
    # fits two, so it needs half as many messages as the formatted pass had sent.
    text = "     ".join(["quantity"] * 10) + "\n\n**total**"

    result = await ResponseManager().deliver(transport, CHAT, text, reply_to=USER_MESSAGE)

    expected = plain_parts(text, transport)
    assert result.plain_fallback
    assert transport.texts[: len(expected)] == expected
    # The transport protocol cannot delete, so leftovers are emptied to a marker.
    assert set(transport.texts[len(expected) :]) == {"…"}


async def test_a_delivery_failure_is_reported_not_raised() -> None:
    result = await ResponseManager().deliver(
        OfflineTransport(), CHAT, "Hello", reply_to=USER_MESSAGE
    )

    assert not result.delivered
    assert result.error == "ConnectionError: network is unreachable"
    assert result.transport_message_ids == ()


async def test_a_transport_refusing_even_plain_text_is_reported_undelivered() -> None:
    result = await ResponseManager().deliver(
        RefusesEverythingTransport(), CHAT, "**Hello**", reply_to=USER_MESSAGE
    )

    assert not result.delivered
    assert result.error.startswith("FormattingRejected")


async def test_a_delivery_error_is_kept_short() -> None:
    class VerboseFailure(RecordingTransport):
        async def send_text(self, chat_id: str, text: str, *, reply_to: str | None = None) -> str:
            raise RuntimeError("x" * 5000)

    result = await ResponseManager().deliver(VerboseFailure(), CHAT, "Hello")

    assert not result.delivered
    assert result.error.startswith("RuntimeError: xxx")
    assert len(result.error) <= 300


# --- streaming ------------------------------------------------------------------------------


async def test_the_first_streamed_text_is_sent_as_a_reply_to_the_user() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0)
    reply = streaming(transport, FakeClock())

    await reply.update("Hel")

    assert transport.texts == ["Hel"]
    assert transport.sent[0].reply_to == USER_MESSAGE


async def test_updates_closer_than_the_edit_interval_are_skipped() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0)
    clock = FakeClock()
    reply = streaming(transport, clock)

    await reply.update("Hel")
    clock.now += 0.5
    await reply.update("Hello")
    clock.now += 0.4
    await reply.update("Hello wo")

    assert transport.texts == ["Hel"]
    assert transport.sent[0].edits == []


async def test_an_update_after_the_interval_edits_the_same_message() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0)
    clock = FakeClock()
    reply = streaming(transport, clock)

    await reply.update("Hel")
    clock.now += 1.0
    await reply.update("Hello")
    clock.now += 1.5
    await reply.update("Hello **world**")

    assert len(transport.sent) == 1
    assert transport.sent[0].edits == ["Hello", "Hello <b>world</b>"]
    assert reply.edits == 2


async def test_an_unchanged_text_is_not_edited_again() -> None:
    transport = TelegramLikeTransport(streams=True, edit_interval_seconds=1.0)
    clock = FakeClock()
    reply = streaming(transport, clock)

    await reply.update("Hello")
    clock.now += 2
    await reply.update("Hello")
    clock.now += 2
    await reply.update("Hello again")

    assert transport.texts == ["Hello again"]
    assert transport.sent[0].edits == ["Hello again"]


async def test_streamed_text_past_the_limit_continues_in_a_new_message() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0, max_message_length=100)
    clock = FakeClock()
    reply = streaming(transport, clock)
    first = "A first paragraph that is long enough to fill most of one small message here."
    second = "And a second paragraph, which no longer fits in the first message."

    await reply.update(first)
    clock.now += 1
    await reply.update(f"{first}\n\n{second}")

    assert transport.texts == [first, second]
    assert [sent.reply_to for sent in transport.sent] == [USER_MESSAGE, None]
    assert transport.sent[0].edits == []


async def test_finish_edits_the_streamed_message_into_the_final_reply() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0)
    clock = FakeClock()
    reply = streaming(transport, clock)

    await reply.update("Hel")
    clock.now += 0.1  # too soon: the final text arrives only through finish
    await reply.update("Hello wor")
    result = await reply.finish("Hello **world**")

    assert transport.texts == ["Hello <b>world</b>"]
    assert result.delivered
    assert result.transport_message_ids == (transport.sent[0].message_id,)


async def test_finish_sends_the_rest_of_a_reply_that_outgrew_the_streamed_message() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0, max_message_length=100)
    reply = streaming(transport, FakeClock())
    first = "A first paragraph that is long enough to fill most of one small message here."

    await reply.update("A first")
    result = await reply.finish(f"{first}\n\nAnd the end, which does not fit with it.")

    assert transport.texts == [first, "And the end, which does not fit with it."]
    assert [sent.reply_to for sent in transport.sent] == [USER_MESSAGE, None]
    assert result.parts == 2


async def test_streamed_messages_beyond_a_shrunk_final_reply_are_marked_with_an_ellipsis() -> None:
    transport = RecordingTransport(streams=True, edit_interval_seconds=1.0, max_message_length=100)
    reply = streaming(transport, FakeClock())
    first = "A first paragraph that is long enough to fill most of one small message here."

    await reply.update(f"{first}\n\nA second attempt that was thrown away.")
    result = await reply.finish("Short answer.")

    assert transport.texts == ["Short answer.", "…"]
    assert result.delivered
    assert result.parts == 1
    assert result.transport_message_ids == (transport.sent[0].message_id,)


async def test_a_transport_that_does_not_stream_sees_nothing_until_finish() -> None:
    transport = RecordingTransport(streams=False)
    reply = streaming(transport, FakeClock())

    await reply.update("Hel")
    await reply.update("Hello wor")
    assert transport.sent == []

    result = await reply.finish("Hello world")

    assert transport.texts == ["Hello world"]
    assert transport.sent[0].edits == []
    assert transport.sent[0].reply_to == USER_MESSAGE
    assert result.delivered


async def test_a_failed_streamed_edit_stops_streaming_but_the_final_reply_lands() -> None:
    transport = FirstEditFailsTransport(streams=True, edit_interval_seconds=1.0)
    clock = FakeClock()
    reply = streaming(transport, clock)

    await reply.update("Hel")
    clock.now += 1
    await reply.update("Hello")  # the edit fails
    clock.now += 1
    await reply.update("Hello wor")  # no further streaming
    assert transport.texts == ["Hel"]

    result = await reply.finish("Hello world")

    assert result.delivered
    assert transport.texts == ["Hello world"]
    assert len(transport.sent) == 1


async def test_formatting_refused_while_streaming_ends_in_a_plain_text_reply() -> None:
    transport = RecordingTransport(streams=True, reject_html=True)
    reply = streaming(transport, FakeClock())

    await reply.update("**Hel")
    await reply.update("**Hello**")
    result = await reply.finish("**Hello** world")

    assert transport.texts == ["Hello world"]
    assert result.delivered
    assert result.plain_fallback


async def test_finish_after_the_whole_reply_was_streamed_reports_it_delivered() -> None:
    transport = TelegramLikeTransport(streams=True, edit_interval_seconds=1.0)
    reply = streaming(transport, FakeClock())

    await reply.update("Hello **world**")
    result = await reply.finish("Hello **world**")

    assert transport.texts == ["Hello <b>world</b>"]
    assert result.delivered


# --- typing and reactions -------------------------------------------------------------------


async def wait_until(condition: Callable[[], bool], *, attempts: int = 2000) -> None:
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_typing_is_shown_again_and_again_until_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline.response_manager, "TYPING_INTERVAL_SECONDS", 0.001)
    transport = RecordingTransport()

    task = ResponseManager.keep_typing(transport, CHAT)
    await wait_until(lambda: transport.typing >= 3)
    await stop(task)
    shown = transport.typing
    await asyncio.sleep(0.01)

    assert task.cancelled()
    assert transport.typing == shown


async def test_failing_typing_indicators_do_not_stop_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline.response_manager, "TYPING_INTERVAL_SECONDS", 0.001)
    transport = OfflineTransport()

    task = ResponseManager.keep_typing(transport, CHAT)
    await wait_until(lambda: transport.typing >= 3)

    assert not task.done()
    await stop(task)


async def test_a_reaction_lands_on_the_users_message() -> None:
    transport = RecordingTransport()

    await ResponseManager.react(transport, CHAT, USER_MESSAGE, "👀")

    assert transport.reactions == [(USER_MESSAGE, "👀")]


async def test_a_failing_reaction_does_not_interrupt_the_reply() -> None:
    await ResponseManager.react(OfflineTransport(), CHAT, USER_MESSAGE, "👀")
