"""Changes that wait for the person, on Telegram: an answer proposing one carries [Confirm]
[Cancel] under its last message, and a press runs it (once) or cancels it, only for the
person who was asked. And ``/connect``, whose link is posted only in a private chat.

Through the raw-update harness: the real bridge and kurigram parsing, fake Claude calling
the real ``github_create_issue`` tool, the real GitHub client against the GitHub fake.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from pyrogram import raw

from aisystem.models import Identity, PendingAction, PendingActionStatus
from pipeline.command_executor import PRIVATE_LINK_ONLY
from pipeline.fakeclaude import Scenario, ToolUseReply
from telegram_bridge.decisions import decision_callback_data, decision_callback_parse
from telegram_bridge.faketelegram.builders import Chat, entity, group_chat, make_user, private_chat
from tests.factories import IdentityFactory
from tests.fakes.github import FakeGitHub
from tests.integrations import conftest as integration_fixtures
from tests.integrations.accounts import github_account
from tests.telegram_bridge.harness.world import World, answered, running, until

pytestmark = pytest.mark.django_db(transaction=True)

github = integration_fixtures.github  # the GitHub fake, configured as staff would

ALICE = make_user(1001, "Alice", username="alice")
BOB = make_user(1002, "Bob", username="bob")
CAROL = make_user(1003, "Carol")  # never wrote to the assistant: no identity
PRIVATE = private_chat(ALICE)
TEAM = group_chat(2001, "Team")
PROPOSES_AN_ISSUE = Scenario(
    name="proposes an issue",
    tool_use=ToolUseReply(
        name="github_create_issue",
        input={"repo": "alice/web", "title": "Fix login"},
        text_before="I'll file that.",
    ),
)
QUESTION = "Create issue “Fix login” in alice/web? Reply /confirm or /cancel."
SetBotCallbackAnswer = raw.functions.messages.SetBotCallbackAnswer
EditMessage = raw.functions.messages.EditMessage


@pytest.fixture
async def alice_on_github(github: FakeGitHub) -> FakeGitHub:
    """Alice (a Telegram identity) has GitHub connected and owns alice/web."""

    def connect() -> None:
        identity = IdentityFactory(external_id=str(ALICE.id), username="alice")
        github_account(github, identity)
        github.add_repo("alice", "web")

    await sync_to_async(connect)()
    return github


def buttons(world: World, chat: Chat, message_id: int) -> list[tuple[str, bytes]]:
    """The inline buttons under one of the bot's messages now, as (text, callback data)."""
    (message,) = [m for m in world.outgoing(chat) if m.id == message_id]
    if message.reply_markup is None:
        return []
    return [(b.text, b.type.data) for row in message.reply_markup.rows for b in row.buttons]


async def proposal(world: World, chat: Chat, text: str, **fields: Any) -> tuple[int, int]:
    """Ask for an issue in ``chat`` as Alice; (the question's message id, the action id)."""
    world.fake.set_scenario(PROPOSES_AN_ISSUE, times=1)
    answers = await answered(world, chat, world.harness.message(chat, ALICE, text, **fields))
    assert answers[-1].endswith(QUESTION)
    action = await PendingAction.objects.aget()
    shown = world.outgoing(chat)[-1].id
    await until(lambda: buttons(world, chat, shown))  # put up once the answer is delivered
    return shown, action.pk


async def press(
    world: World, user: raw.types.User, chat: Chat, message_id: int, data: bytes
) -> str:
    """Press a button as ``user``; the toast they are shown."""
    before = len(world.server.sent(SetBotCallbackAnswer))
    await world.harness.push_press(user, chat, message_id, data)
    await until(lambda: len(world.server.sent(SetBotCallbackAnswer)) > before)
    return str(world.server.sent(SetBotCallbackAnswer)[-1].message)


async def action_status(action_id: int) -> str:
    return (await PendingAction.objects.aget(pk=action_id)).status


def test_callback_data_names_the_request_and_fits_telegrams_limit() -> None:
    largest = 2**63 - 1
    for decision in ("confirm", "cancel"):
        data = decision_callback_data(largest, decision)
        assert len(data.encode()) <= 64
        parsed = decision_callback_parse(data.encode())
        assert parsed is not None and (parsed.action_id, parsed.decision) == (largest, decision)
    assert decision_callback_parse("stop:1001") is None
    assert decision_callback_parse("pa:z:1") is None
    assert decision_callback_parse("pa:c:") is None


async def test_an_answer_proposing_a_change_shows_confirm_and_cancel(
    world: World, alice_on_github: FakeGitHub
) -> None:
    async with running(world.bridge()):
        shown, action_id = await proposal(world, PRIVATE, "file a bug about the login")

    assert buttons(world, PRIVATE, shown) == [
        ("✅ Confirm", f"pa:c:{action_id}".encode()),
        ("✖ Cancel", f"pa:x:{action_id}".encode()),
    ]
    assert alice_on_github.repo("alice", "web").issues == []  # nothing runs before a press


async def test_confirm_creates_the_issue_once_even_when_pressed_twice(
    world: World, alice_on_github: FakeGitHub
) -> None:
    async with running(world.bridge()):
        shown, action_id = await proposal(world, PRIVATE, "file a bug about the login")
        confirm = f"pa:c:{action_id}".encode()

        first = await press(world, ALICE, PRIVATE, shown, confirm)
        await until(lambda: len(world.answers_to(PRIVATE, shown)) == 1)
        second = await press(world, ALICE, PRIVATE, shown, confirm)  # a double tap
        await until(lambda: len(world.answers_to(PRIVATE, shown)) == 2)

    done, again = world.answers_to(PRIVATE, shown)
    assert done.startswith("Created issue #1 “Fix login” in alice/web: ")
    assert done.endswith(f"{alice_on_github.base_url}alice/web/issues/1")
    assert again.startswith("That's done already. Created issue #1")
    assert (first, second) == ("Done.", "Done.")
    assert [issue.title for issue in alice_on_github.repo("alice", "web").issues] == ["Fix login"]
    assert buttons(world, PRIVATE, shown) == []  # taken off after the first press
    assert await action_status(action_id) == PendingActionStatus.DONE


async def test_someone_else_cannot_confirm_or_cancel_and_nothing_runs(
    world: World, alice_on_github: FakeGitHub
) -> None:
    await Identity.objects.acreate(transport="telegram", external_id=str(BOB.id), username="bob")
    text = "@aisystem_bot file a bug about the login"
    mention = entity(text, "@aisystem_bot", raw.types.MessageEntityMention)
    async with running(world.bridge()):
        shown, action_id = await proposal(world, TEAM, text, entities=[mention])
        confirm, cancel = f"pa:c:{action_id}".encode(), f"pa:x:{action_id}".encode()
        posted = len(world.outgoing(TEAM))

        bob_confirms = await press(world, BOB, TEAM, shown, confirm)
        carol_confirms = await press(world, CAROL, TEAM, shown, confirm)
        bob_cancels = await press(world, BOB, TEAM, shown, cancel)

        assert len(world.outgoing(TEAM)) == posted  # refusals are toasts, not posts
        assert len(buttons(world, TEAM, shown)) == 2  # still Alice's to decide
        assert await action_status(action_id) == PendingActionStatus.PENDING

        await press(world, ALICE, TEAM, shown, confirm)
        await until(lambda: world.answers_to(TEAM, shown))

    assert bob_confirms == carol_confirms == "That isn't yours to confirm."
    assert bob_cancels == "That isn't yours to cancel."
    (done,) = world.answers_to(TEAM, shown)
    assert done.startswith("Created issue #1 “Fix login” in alice/web")
    assert len(alice_on_github.repo("alice", "web").issues) == 1


async def test_cancel_drops_the_change_and_says_so(
    world: World, alice_on_github: FakeGitHub
) -> None:
    async with running(world.bridge()):
        shown, action_id = await proposal(world, PRIVATE, "file a bug about the login")

        toast = await press(world, ALICE, PRIVATE, shown, f"pa:x:{action_id}".encode())
        await until(lambda: world.answers_to(PRIVATE, shown))
        late = await press(world, ALICE, PRIVATE, shown, f"pa:c:{action_id}".encode())

    assert toast == "Cancelled."
    assert (
        world.answers_to(PRIVATE, shown)[0] == "Cancelled: Create issue “Fix login” in alice/web."
    )
    assert late == "Cancelled."  # a late Confirm does not bring it back…
    assert world.answers_to(PRIVATE, shown)[-1].startswith("That was cancelled")
    assert alice_on_github.repo("alice", "web").issues == []  # …and nothing ran
    assert buttons(world, PRIVATE, shown) == []
    assert await action_status(action_id) == PendingActionStatus.CANCELLED


async def test_connect_in_a_private_chat_answers_with_a_one_time_link(
    world: World, github: FakeGitHub
) -> None:
    async with running(world.bridge()):
        (answer,) = await answered(
            world, PRIVATE, world.harness.message(PRIVATE, ALICE, "/connect github")
        )

    assert "Open this link to connect GitHub" in answer
    assert "http://testserver/connect/" in answer


async def test_connect_in_a_group_posts_no_link(world: World, github: FakeGitHub) -> None:
    async with running(world.bridge()):
        (answer,) = await answered(
            world, TEAM, world.harness.message(TEAM, ALICE, "/connect@aisystem_bot github")
        )

    assert answer == PRIVATE_LINK_ONLY == "Ask me in a private chat: the link is personal."
    assert "/connect/" not in answer and "http" not in answer
