"""The browser chat's Confirm/Cancel: an answer proposing a change carries its request id,
and a ``decide`` frame settles it as the socket's user, once.

``/ws/chat/`` with the real pipeline against the fake Messages API (its scenario calls the
real ``github_create_issue`` tool), the real GitHub client against the GitHub fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from aisystem.chat.protocol import ClientDecision, FrameError, frame_parse
from aisystem.chat.services import web_participant_ensure
from aisystem.models import AccessAction, AccessRule, PendingAction, PendingActionStatus
from pipeline.fakeclaude import FakeClaude, Scenario, ToolUseReply
from tests.aisystem.test_chat import chat_socket, events_until_reply, opening, send
from tests.conftest import PRIMARY_KEY
from tests.factories import UserFactory
from tests.fakes.github import FakeGitHub
from tests.integrations import conftest as integration_fixtures
from tests.integrations.accounts import github_account

github = integration_fixtures.github  # the GitHub fake, configured as staff would

PROPOSES_AN_ISSUE = Scenario(
    name="proposes an issue",
    tool_use=ToolUseReply(
        name="github_create_issue",
        input={"repo": "ada/web", "title": "Fix login"},
        text_before="I'll file that.",
    ),
)
QUESTION = "Create issue “Fix login” in ada/web? Reply /confirm or /cancel."


@pytest.fixture(autouse=True)
def claude_points_at_the_fake(fake_claude: FakeClaude) -> Iterator[None]:
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.fixture
def ada(github: FakeGitHub) -> Any:
    """A signed-in browser user with GitHub connected, owning ada/web; browser chat open."""
    AccessRule.objects.create(action=AccessAction.ALLOW, transport="web")
    user = UserFactory(username="ada", first_name="Ada")
    identity, chat = web_participant_ensure(user_id=user.pk)
    github_account(github, identity, chat)
    github.add_repo("ada", "web")
    return user


async def propose(communicator: WebsocketCommunicator, fake: FakeClaude) -> int:
    """Ask for an issue; the request id the answer carries."""
    fake.set_scenario(PROPOSES_AN_ISSUE, times=1)
    await send(communicator, "file a bug about the login", "m1")
    reply = (await events_until_reply(communicator, "m1"))[-1]
    assert reply["text"].endswith(QUESTION)
    assert reply["pending_action_id"] is not None
    assert (await communicator.receive_json_from(timeout=5))["type"] == "status"
    return int(reply["pending_action_id"])


async def decide(communicator: WebsocketCommunicator, action_id: int, decision: str) -> Any:
    """Press a button; the ``decided`` event (after its ``ack``)."""
    frame = {"type": "decide", "action_id": action_id, "decision": decision, "id": f"d-{decision}"}
    await communicator.send_json_to(frame)
    ack = await communicator.receive_json_from(timeout=10)
    assert ack == {"type": "ack", "id": f"d-{decision}"}
    decided = await communicator.receive_json_from(timeout=10)
    assert decided["type"] == "decided" and decided["id"] == f"d-{decision}"
    return decided


async def status_of(action_id: int) -> str:
    return (await PendingAction.objects.aget(pk=action_id)).status


@pytest.mark.django_db(transaction=True)
async def test_confirm_creates_the_issue_once_even_when_pressed_twice(
    ada: Any, github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    async with chat_socket(ada) as page:
        await opening(page)
        action_id = await propose(page, fake_claude)
        assert github.repo("ada", "web").issues == []  # nothing before the press

        done = await decide(page, action_id, "confirm")
        again = await decide(page, action_id, "confirm")

    assert done["action_id"] == action_id and done["settled"] is True
    assert done["text"].startswith("Created issue #1 “Fix login” in ada/web: ")
    assert done["text"].endswith(f"{github.base_url}ada/web/issues/1")
    assert again["text"].startswith("That's done already. Created issue #1")
    assert [issue.title for issue in github.repo("ada", "web").issues] == ["Fix login"]
    assert await status_of(action_id) == PendingActionStatus.DONE


@pytest.mark.django_db(transaction=True)
async def test_cancel_drops_the_change(
    ada: Any, github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    async with chat_socket(ada) as page:
        await opening(page)
        action_id = await propose(page, fake_claude)
        cancelled = await decide(page, action_id, "cancel")
        late = await decide(page, action_id, "confirm")

    assert cancelled["text"] == "Cancelled: Create issue “Fix login” in ada/web."
    assert cancelled["settled"] is True
    assert late["text"].startswith("That was cancelled")
    assert github.repo("ada", "web").issues == []
    assert await status_of(action_id) == PendingActionStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
async def test_someone_else_cannot_decide_a_request_that_is_not_theirs(
    ada: Any, github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    chatted = await sync_to_async(UserFactory)(username="eve")
    await sync_to_async(web_participant_ensure)(user_id=chatted.pk)
    never_chatted = await sync_to_async(UserFactory)(username="mallory")
    async with chat_socket(ada) as page:
        await opening(page)
        action_id = await propose(page, fake_claude)

    for other in (chatted, never_chatted):
        async with chat_socket(other) as page:
            await opening(page)
            confirmed = await decide(page, action_id, "confirm")
            cancelled = await decide(page, action_id, "cancel")
        assert confirmed["text"] == "That isn't yours to confirm."
        assert cancelled["text"] == "That isn't yours to cancel."
        assert confirmed["settled"] is cancelled["settled"] is False

    assert github.repo("ada", "web").issues == []
    assert await status_of(action_id) == PendingActionStatus.PENDING


@pytest.mark.django_db(transaction=True)
async def test_a_reloaded_page_shows_the_buttons_while_the_change_waits(
    ada: Any, fake_claude: FakeClaude
) -> None:
    async with chat_socket(ada) as page:
        await opening(page)
        action_id = await propose(page, fake_claude)

    async with chat_socket(ada) as page:
        history, _ = await opening(page)
        await decide(page, action_id, "cancel")

    async with chat_socket(ada) as page:
        settled, _ = await opening(page)

    question, answer = history["messages"]
    assert (question["pending_action_id"], answer["pending_action_id"]) == (None, action_id)
    assert [entry["pending_action_id"] for entry in settled["messages"]] == [None, None]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            '{"type": "decide", "action_id": 7, "decision": "confirm", "id": "d1"}',
            ClientDecision(action_id=7, decision="confirm", client_id="d1"),
        ),
        (
            '{"type": "decide", "action_id": 7, "decision": "cancel", "id": "d1"}',
            ClientDecision(action_id=7, decision="cancel", client_id="d1"),
        ),
        (
            '{"type": "decide", "action_id": "7", "decision": "confirm", "id": "d1"}',
            FrameError("A decision needs the number of the request it is about.", "d1"),
        ),
        (
            '{"type": "decide", "action_id": true, "decision": "confirm"}',
            FrameError("A decision needs the number of the request it is about."),
        ),
        (
            '{"type": "decide", "action_id": 0, "decision": "confirm"}',
            FrameError("A decision needs the number of the request it is about."),
        ),
        (
            '{"type": "decide", "action_id": 7, "decision": "yes", "id": "d1"}',
            FrameError('A decision is "confirm" or "cancel".', "d1"),
        ),
    ],
)
def test_decide_frames_are_parsed_or_refused_in_plain_words(
    frame: str, expected: ClientDecision | FrameError
) -> None:
    assert frame_parse(frame) == expected
