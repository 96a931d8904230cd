"""Classifying messages, planning what to do with them, and parsing slash commands."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.agent_request import AttachmentLimits
from pipeline.commands import COMMANDS, help_text, parse_command
from pipeline.type_router import TypeRouter, classify, route, unsupported_reply
from pipeline.types import (
    Attachment,
    Contact,
    InboundMessage,
    Location,
    MessageContext,
    Poll,
    ReplyReference,
)
from tests.pipeline.builders import WORKSPACE, context, message

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


def group(**overrides: Any) -> MessageContext:
    return context(chat_type="supergroup", **overrides)


def plan_for(msg: InboundMessage, ctx: MessageContext | None = None) -> Any:
    return TypeRouter().plan(msg, ctx or context())


# --- classify ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attachment_kind", "kind"),
    [
        ("photo", "photo"),
        ("document", "document"),
        ("voice", "voice"),
        ("audio", "voice"),
        ("video", "video"),
        ("video_note", "video"),
        ("animation", "video"),
        ("sticker", "sticker"),
    ],
)
def test_attachments_are_classified_by_their_kind(attachment_kind: Any, kind: str) -> None:
    msg = message(text="", attachments=(Attachment(kind=attachment_kind),))
    assert classify(msg) == (kind, kind)


def test_location_contact_and_poll_are_classified() -> None:
    assert classify(message(text="", location=Location(1.0, 2.0)))[1] == "location"
    assert classify(message(text="", contact=Contact("+100")))[1] == "contact"
    assert classify(message(text="", poll=Poll("Lunch?", ("a", "b"))))[1] == "poll"


def test_a_slash_command_is_a_command_and_plain_words_are_text() -> None:
    assert classify(message(text="/help")) == ("command", "command")
    assert classify(message(text="what is 2/3?")) == ("text", "text")


def test_a_message_with_nothing_in_it_is_unknown() -> None:
    assert classify(message(text="")) == ("unknown", "unknown")
    assert classify(message(text="  \n ")) == ("unknown", "unknown")


def test_edited_wins_over_forwarded_and_keeps_the_content_kind() -> None:
    assert classify(message(is_edited=True, is_forwarded=True)) == ("edited", "text")
    assert classify(message(is_forwarded=True)) == ("forwarded", "text")


def test_a_forwarded_command_is_text_not_an_order() -> None:
    assert classify(message(text="/new", is_forwarded=True)) == ("forwarded", "text")


# --- plan: who is addressed --------------------------------------------------------------


def test_a_private_message_goes_to_the_agent_with_the_workspace_model() -> None:
    plan = plan_for(message())
    assert (plan.handler, plan.message_type, plan.kind) == ("agent", "text", "text")
    assert (plan.model, plan.max_tokens) == (WORKSPACE.model, WORKSPACE.max_tokens)
    assert plan.stream is True
    assert plan.background is False
    assert plan.priority == 5


def test_a_group_message_without_mention_is_ignored() -> None:
    plan = plan_for(message(chat_type="supergroup"), group())
    assert (plan.handler, plan.reason) == ("ignore", "not_addressed")


def test_a_group_message_mentioning_the_assistant_is_answered() -> None:
    plan = plan_for(message(text="@HelperBot hi", mentions_assistant=True), group())
    assert plan.handler == "agent"


def test_a_group_reply_to_the_assistant_is_answered() -> None:
    reply = ReplyReference("5", text="earlier answer", from_assistant=True)
    assert plan_for(message(reply_to=reply), group()).handler == "agent"


def test_a_group_reply_to_someone_else_is_ignored() -> None:
    reply = ReplyReference("5", text="hi", sender_name="Ann")
    assert plan_for(message(reply_to=reply), group()).handler == "ignore"


def test_a_group_set_to_all_answers_every_message() -> None:
    assert plan_for(message(), group(reply_mode="all")).handler == "agent"


def test_an_unknown_reply_mode_behaves_like_mention() -> None:
    assert plan_for(message(), group(reply_mode="sometimes")).handler == "ignore"


def test_a_channel_post_without_mention_is_ignored() -> None:
    assert plan_for(message(), context(chat_type="channel")).handler == "ignore"


def test_a_bare_command_in_a_group_is_answered() -> None:
    plan = plan_for(message(text="/help"), group())
    assert (plan.handler, plan.command) == ("command", "help")


def test_a_command_for_us_by_name_in_a_group_is_answered() -> None:
    plan = plan_for(message(text="/usage@helperbot"), group())
    assert (plan.handler, plan.command) == ("command", "usage")


def test_a_command_for_another_bot_is_ignored_everywhere() -> None:
    for ctx in (context(), group(), group(reply_mode="all")):
        plan = plan_for(message(text="/help@OtherBot"), ctx)
        assert (plan.handler, plan.reason) == ("ignore", "not_addressed")


# --- plan: commands ------------------------------------------------------------------------


def test_a_command_carries_its_name_and_arguments_and_comes_first() -> None:
    plan = plan_for(message(text="/Workspace  Research notes "))
    assert (plan.handler, plan.command, plan.command_args) == (
        "command",
        "workspace",
        "Research notes",
    )
    assert plan.priority == 0


def test_an_unknown_command_still_goes_to_the_command_handler() -> None:
    plan = plan_for(message(text="/frobnicate now"))
    assert (plan.handler, plan.command, plan.command_args) == ("command", "frobnicate", "now")


# --- plan: content -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        message(text="", attachments=(Attachment(kind="sticker", emoji="👍"),)),
        message(text="", location=Location(52.5, 13.4, title="Gate")),
        message(text="", contact=Contact("+4930", first_name="Ann")),
        message(text="", poll=Poll("Lunch?", ("Pizza", "Soup"))),
        message(attachments=(Attachment(kind="photo", data=PNG),)),
        message(attachments=(Attachment(kind="photo", mime_type="image/webp", data=JPEG),)),
        message(attachments=(Attachment(kind="document", file_name="r.pdf", data=PDF),)),
        message(attachments=(Attachment(kind="document", mime_type="text/csv", data=b"a,b"),)),
        message(attachments=(Attachment(kind="document", file_name="main.py", data=b"x=1"),)),
        message(attachments=(Attachment(kind="document", file_name="a.json", data=b"{}"),)),
    ],
    ids=["sticker", "location", "contact", "poll", "png", "jpeg", "pdf", "csv", "py", "json"],
)
def test_content_claude_can_read_goes_to_the_agent(msg: InboundMessage) -> None:
    assert plan_for(msg).handler == "agent"


@pytest.mark.parametrize(
    ("attachment", "reason"),
    [
        (Attachment(kind="voice", duration_seconds=3), "voice"),
        (Attachment(kind="audio", file_name="song.mp3"), "voice"),
        (Attachment(kind="video"), "video"),
        (Attachment(kind="video_note"), "video"),
        (Attachment(kind="animation"), "video"),
        (Attachment(kind="document", file_name="a.zip", data=b"PK\x03\x04"), "document_type"),
        (Attachment(kind="document", file_name="a.docx", data=b"PK\x03\x04"), "document_type"),
        (Attachment(kind="document", file_name="blob", data=b"\x00\x01"), "document_type"),
        (Attachment(kind="document", file_name="fake.pdf", data=b"<html>"), "document_type"),
        (Attachment(kind="photo"), "image"),
        (Attachment(kind="photo", mime_type="image/heic", data=b"....ftypheic"), "image"),
        (Attachment(kind="document", file_name="a.png", data=b"not an image"), "image"),
    ],
    ids=[
        "voice",
        "audio",
        "video",
        "video-note",
        "animation",
        "zip",
        "docx",
        "binary",
        "fake-pdf",
        "photo-without-data",
        "heic",
        "fake-png",
    ],
)
def test_content_claude_cannot_read_is_unsupported_with_a_reason(
    attachment: Attachment, reason: str
) -> None:
    plan = plan_for(message(text="what is this?", attachments=(attachment,)))
    assert (plan.handler, plan.reason) == ("unsupported", reason)
    assert plan.stream is False


def test_an_image_over_the_limit_is_unsupported() -> None:
    limits = AttachmentLimits(max_image_bytes=10)
    msg = message(attachments=(Attachment(kind="photo", data=PNG),))
    plan = TypeRouter(limits=limits).plan(msg, context())
    assert (plan.handler, plan.reason) == ("unsupported", "image")


def test_a_pdf_over_the_limit_is_too_large_even_when_not_downloaded() -> None:
    limits = AttachmentLimits(max_pdf_bytes=1000)
    big = Attachment(kind="document", file_name="big.pdf", mime_type="application/pdf", size=5000)
    plan = route(message(attachments=(big,)), context(), limits=limits)
    assert (plan.handler, plan.reason) == ("unsupported", "document_too_large")


def test_a_pdf_that_was_not_downloaded_is_reported_as_such() -> None:
    pdf = Attachment(kind="document", file_name="r.pdf", size=100)
    assert plan_for(message(attachments=(pdf,))).reason == "download_failed"


def test_an_empty_message_is_unsupported_as_unknown() -> None:
    plan = plan_for(message(text=""))
    assert (plan.handler, plan.reason) == ("unsupported", "unknown")


def test_one_readable_attachment_among_unreadable_ones_is_enough() -> None:
    attachments = (
        Attachment(kind="document", file_name="a.docx", data=b"PK"),
        Attachment(kind="photo", data=PNG),
    )
    assert plan_for(message(attachments=attachments)).handler == "agent"


# --- plan: edited, forwarded, catch-up ---------------------------------------------------


def test_an_edited_message_is_routed_like_its_content_with_lower_priority() -> None:
    plan = plan_for(message(is_edited=True))
    assert (plan.handler, plan.message_type, plan.kind, plan.priority) == (
        "agent",
        "edited",
        "text",
        6,
    )


def test_an_edited_voice_message_is_still_unsupported() -> None:
    plan = plan_for(message(text="", is_edited=True, attachments=(Attachment(kind="voice"),)))
    assert (plan.handler, plan.message_type, plan.reason) == ("unsupported", "edited", "voice")


def test_a_forwarded_message_goes_to_the_agent_with_lower_priority() -> None:
    plan = plan_for(message(is_forwarded=True))
    assert (plan.handler, plan.message_type, plan.priority) == ("agent", "forwarded", 6)


def test_a_catch_up_text_runs_now_at_catch_up_priority() -> None:
    plan = plan_for(message(is_catch_up=True))
    assert (plan.handler, plan.background, plan.priority) == ("agent", False, 8)


def test_a_catch_up_pdf_runs_in_the_background() -> None:
    pdf = Attachment(kind="document", file_name="r.pdf", data=PDF)
    assert plan_for(message(is_catch_up=True, attachments=(pdf,))).background is True


def test_a_large_catch_up_photo_runs_in_the_background_but_a_small_one_does_not() -> None:
    big = Attachment(kind="photo", data=PNG + b"\x00" * (2 * 1024 * 1024))
    small = Attachment(kind="photo", data=PNG)
    assert plan_for(message(is_catch_up=True, attachments=(big,))).background is True
    assert plan_for(message(is_catch_up=True, attachments=(small,))).background is False


def test_a_small_interactive_pdf_is_answered_at_once_and_a_large_one_in_the_background() -> None:
    small = Attachment(kind="document", file_name="r.pdf", data=PDF)
    large = Attachment(kind="document", file_name="r.pdf", data=PDF + b"%" * (1024 * 1024))
    assert plan_for(message(attachments=(small,))).background is False
    assert plan_for(message(attachments=(large,))).background is True


def test_bg_with_a_task_goes_to_the_agent_in_the_background() -> None:
    plan = plan_for(message(text="/bg summarise the report"))
    assert (plan.handler, plan.background, plan.stream) == ("agent", True, False)
    assert (plan.command, plan.command_args) == ("bg", "summarise the report")


def test_bg_alone_goes_to_the_command_handler() -> None:
    plan = plan_for(message(text="/bg"))
    assert (plan.handler, plan.background, plan.command) == ("command", False, "bg")


def test_a_catch_up_command_keeps_command_priority() -> None:
    assert plan_for(message(text="/status", is_catch_up=True)).priority == 0


# --- unsupported replies -----------------------------------------------------------------


def test_the_voice_reply_says_voice_is_not_supported_yet() -> None:
    assert unsupported_reply("voice") == (
        "Voice messages aren't supported yet — please send your question as text."
    )


@pytest.mark.parametrize(
    "reason",
    ["voice", "video", "image", "document_type", "document_too_large", "download_failed"],
)
def test_every_reason_has_its_own_short_reply(reason: str) -> None:
    reply = unsupported_reply(reason)
    assert reply != unsupported_reply("unknown")
    assert 0 < len(reply) < 200


def test_an_unheard_of_reason_gets_the_generic_reply() -> None:
    assert unsupported_reply("gremlins") == unsupported_reply("unknown")


# --- commands ----------------------------------------------------------------------------


def test_commands_lists_every_command_in_order() -> None:
    assert list(COMMANDS) == [
        "start",
        "help",
        "new",
        "workspace",
        "usage",
        "status",
        "whoami",
        "connect",
        "connections",
        "disconnect",
        "confirm",
        "cancel",
        "remind",
        "reminders",
        "timezone",
        "bg",
        "export",
        "forget",
    ]


def test_a_command_is_parsed_into_a_lowercase_name_and_stripped_args() -> None:
    parsed = parse_command("  /WorkSpace   Café ☕  ")
    assert parsed is not None
    assert (parsed.name, parsed.args, parsed.addressed_to_other) == ("workspace", "Café ☕", False)


def test_arguments_may_span_lines() -> None:
    parsed = parse_command("/new\nfirst line\nsecond")
    assert parsed is not None
    assert parsed.args == "first line\nsecond"


def test_a_command_naming_us_is_ours_whatever_the_case() -> None:
    parsed = parse_command("/help@HELPERbot", "helperbot")
    assert parsed is not None
    assert (parsed.name, parsed.addressed_to_other) == ("help", False)


def test_our_username_may_be_given_with_an_at_sign() -> None:
    parsed = parse_command("/help@HelperBot", "@HelperBot")
    assert parsed is not None
    assert parsed.addressed_to_other is False


def test_a_command_naming_another_bot_is_addressed_to_other() -> None:
    parsed = parse_command("/start@OtherBot now", "HelperBot")
    assert parsed is not None
    assert (parsed.name, parsed.args, parsed.addressed_to_other) == ("start", "now", True)


def test_a_named_bot_counts_as_another_when_our_name_is_unknown() -> None:
    parsed = parse_command("/start@SomeBot")
    assert parsed is not None
    assert parsed.addressed_to_other is True


@pytest.mark.parametrize(
    "text", ["/", "/123", "/3pm", "/usr/bin", "hello /help", "", "//help", "/ help", "/привет"]
)
def test_text_that_is_not_a_command_parses_to_none(text: str) -> None:
    assert parse_command(text) is None


@given(st.text())
def test_parsing_never_crashes_and_names_are_lowercase_ascii(text: str) -> None:
    parsed = parse_command(text, "HelperBot")
    if parsed is not None:
        assert parsed.name == parsed.name.lower()
        assert parsed.name.isascii()
        assert parsed.args == parsed.args.strip()


def test_help_lists_every_command_and_the_workspaces() -> None:
    text = help_text(["default", "research"])
    for name in COMMANDS:
        assert f"/{name}" in text
    assert "/workspace [name]" in text
    assert "`default`" in text
    assert "`research`" in text


def test_help_without_workspaces_does_not_mention_them() -> None:
    assert "Workspaces" not in help_text()
