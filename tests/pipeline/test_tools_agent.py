"""Integration tools in the whole pipeline: the real processor and anthropic SDK against the
fake Messages API (its scenarios call the tools), the real GitHub client against the fake
GitHub. Each person is offered only the tools of what they connected, with their own token."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aisystem.models import (
    AccessAction,
    AccessRule,
    ChatType,
    Identity,
    IntegrationAccount,
    IntegrationStatus,
    PendingAction,
    Transport,
)
from pipeline.claude.client import ClaudeClient
from pipeline.fakeclaude import SERVER_ERROR, FakeClaude, Scenario, ToolUseReply
from pipeline.processor import UnifiedMessageProcessor
from pipeline.types import InboundMessage
from tests.factories import UserFactory
from tests.fakes.github import FakeGitHub
from tests.fakes.transport import RecordingTransport
from tests.pipeline.conftest import PRIMARY_KEY

pytestmark = pytest.mark.django_db(transaction=True)

GITHUB_TOOLS = [
    "github_list_repos",
    "github_list_issues",
    "github_get_issue",
    "github_create_issue",
    "github_comment_issue",
]
_ids = itertools.count(1)


async def _no_sleep(seconds: float) -> None:
    return None


async def sync(function: Any, *args: Any, **kwargs: Any) -> Any:
    return await sync_to_async(function)(*args, **kwargs)


@pytest.fixture
def processor(fake_claude: FakeClaude) -> UnifiedMessageProcessor:
    client = ClaudeClient(
        base_url=fake_claude.base_url, fallback_api_key=PRIMARY_KEY, sleep=_no_sleep
    )
    return UnifiedMessageProcessor(client=client)  # tools: built per message


@pytest.fixture
def github(settings: Any) -> Iterator[FakeGitHub]:
    """The fake GitHub as this installation's GitHub (Google not configured); ann owns
    ann/web, bob owns bob/secret."""
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    with FakeGitHub() as fake:
        settings.INTEGRATIONS = {
            "github": {
                "CLIENT_ID": fake.client_id,
                "CLIENT_SECRET": fake.client_secret,
                "URL": fake.base_url,
                "API_URL": fake.api_url,
            },
            "google": {**settings.INTEGRATIONS["google"], "CLIENT_ID": "", "CLIENT_SECRET": ""},
        }
        for login in ("ann", "bob"):
            fake.add_user(login)
        fake.add_repo("ann", "web")
        fake.add_repo("bob", "secret", private=True)
        yield fake


def connect(fake: FakeGitHub, sender_id: str, login: str, **fields: Any) -> None:
    """The Telegram sender ``sender_id`` has GitHub account ``login`` connected."""
    user = UserFactory(username=f"user-{login}")
    Identity.objects.create(
        transport=Transport.TELEGRAM, external_id=sender_id, username=login, user=user
    )
    IntegrationAccount.objects.create(
        user=user,
        provider="github",
        uid=login,
        extra_data={"access_token": fake.issue_tokens(login).access_token},
        login=f"@{login}",
        **fields,
    )


def message(text: str, *, sender_id: str = "7", chat_id: str = "42") -> InboundMessage:
    return InboundMessage(
        transport="telegram",
        chat_id=chat_id,
        chat_type=ChatType.PRIVATE,
        message_id=str(next(_ids)),
        sender_id=sender_id,
        sent_at=timezone.now(),
        text=text,
        assistant_username="helperbot",
    )


def calls_tool(name: str, **arguments: Any) -> Scenario:
    return Scenario(
        name=f"calls {name}",
        tool_use=ToolUseReply(name=name, input=arguments, text_before="Let me see."),
    )


def offered(fake: FakeClaude, index: int = -1) -> list[str]:
    body = fake.requests[index].body or {}
    return [tool["name"] for tool in body.get("tools", [])]


def tool_result(fake: FakeClaude) -> dict[str, Any]:
    body = fake.requests[-1].body or {}
    last = body["messages"][-1]["content"]
    result: dict[str, Any] = next(block for block in last if block["type"] == "tool_result")
    return result


async def test_someone_without_an_account_is_offered_no_github_tools(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    result = await processor.process_message(message("list my repos"), RecordingTransport())

    assert result.status == "answered"
    assert offered(fake_claude) == ["get_current_time", "schedule_reminder"]
    assert "send /connect github" in (fake_claude.requests[-1].body or {})["system"]


async def test_someone_with_github_connected_is_offered_its_tools(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")

    await processor.process_message(message("list my repos"), RecordingTransport())

    assert offered(fake_claude) == ["get_current_time", "schedule_reminder", *GITHUB_TOOLS]
    assert "GitHub as @ann" in (fake_claude.requests[-1].body or {})["system"]


async def test_an_account_that_needs_reconnecting_brings_no_tools(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann", status=IntegrationStatus.NEEDS_RECONNECT)

    await processor.process_message(message("list my repos"), RecordingTransport())

    assert offered(fake_claude) == ["get_current_time", "schedule_reminder"]
    assert "needs reconnecting" in (fake_claude.requests[-1].body or {})["system"]


async def test_two_people_each_read_only_their_own_repositories(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    await sync(connect, github, "8", "bob")
    fake_claude.set_scenario(calls_tool("github_list_repos"), times=1)

    ann = await processor.process_message(message("my repos?"), RecordingTransport())
    ann_sees = tool_result(fake_claude)["content"]
    fake_claude.set_scenario(calls_tool("github_list_repos"), times=1)
    await processor.process_message(message("mine?", sender_id="8"), RecordingTransport())
    bob_sees = tool_result(fake_claude)["content"]

    assert ann.status == "answered"
    assert "ann/web" in ann_sees and "bob/secret" not in ann_sees
    assert "bob/secret" in bob_sees and "ann/web" not in bob_sees


async def test_a_provider_failure_is_a_tool_error_claude_can_explain(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(calls_tool("github_list_issues", repo="bob/secret"), times=1)

    result = await processor.process_message(message("bob's issues?"), RecordingTransport())

    assert result.status == "answered"
    error = tool_result(fake_claude)
    assert error["is_error"] is True
    assert error["content"].startswith("GitHub failed: HTTP 404")


async def test_bad_input_is_explained_to_claude(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(calls_tool("github_get_issue", repo="web", number=1), times=1)

    await processor.process_message(message("issue 1?"), RecordingTransport())

    error = tool_result(fake_claude)
    assert error["is_error"] is True
    assert "repo must be owner/name" in error["content"]


async def test_a_write_waits_for_the_person_and_runs_on_confirm(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(
        calls_tool("github_create_issue", repo="ann/web", title="Fix login"), times=1
    )
    transport = RecordingTransport()

    proposed = await processor.process_message(message("file a bug"), transport)

    assert github.repo("ann", "web").issues == []
    assert proposed.reply.endswith(
        "Create issue “Fix login” in ann/web? Reply /confirm or /cancel."
    )
    action = await PendingAction.objects.aget()
    assert proposed.pending_action_id == action.pk
    assert proposed.reply_message_ids == tuple(sent.message_id for sent in transport.sent)
    assert tool_result(fake_claude)["content"].startswith("Not done yet")

    confirmed = await processor.process_message(message("/confirm"), RecordingTransport())

    assert confirmed.reply.startswith("Created issue #1 “Fix login” in ann/web: ")
    assert confirmed.reply.endswith(f"{github.base_url}ann/web/issues/1")
    assert [issue.title for issue in github.repo("ann", "web").issues] == ["Fix login"]


async def test_no_tool_runs_after_a_write_was_proposed(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(calls_tool("github_create_issue", repo="ann/web", title="Again"))

    result = await processor.process_message(message("file bugs"), RecordingTransport())

    assert len(fake_claude.requests) == 2  # the proposal, then one call to say so; no more
    assert await PendingAction.objects.acount() == 1
    assert result.reply.endswith("Create issue “Again” in ann/web? Reply /confirm or /cancel.")


async def test_the_question_is_asked_even_if_claude_fails_after_the_proposal(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(SERVER_ERROR)
    fake_claude.set_scenario(
        calls_tool("github_create_issue", repo="ann/web", title="Fix login"), times=1
    )

    result = await processor.process_message(message("file a bug"), RecordingTransport())

    assert result.status == "answered"
    assert result.reply == (
        "Let me see.\n\nCreate issue “Fix login” in ann/web? Reply /confirm or /cancel."
    )
    assert result.pending_action_id == (await PendingAction.objects.aget()).pk


async def test_cancel_after_a_proposal_cancels_it(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(
        calls_tool("github_create_issue", repo="ann/web", title="Fix login"), times=1
    )
    await processor.process_message(message("file a bug"), RecordingTransport())

    cancelled = await processor.process_message(message("/cancel"), RecordingTransport())
    nothing = await processor.process_message(message("/cancel"), RecordingTransport())

    assert cancelled.reply == "Cancelled: Create issue “Fix login” in ann/web."
    assert nothing.reply == "There's nothing to stop."
    assert github.repo("ann", "web").issues == []


async def test_someone_else_in_the_chat_cannot_confirm(
    processor: UnifiedMessageProcessor, fake_claude: FakeClaude, github: FakeGitHub
) -> None:
    await sync(connect, github, "7", "ann")
    fake_claude.set_scenario(
        calls_tool("github_create_issue", repo="ann/web", title="Fix login"), times=1
    )
    await processor.process_message(message("file a bug"), RecordingTransport())

    other = await processor.process_message(
        message("/confirm", sender_id="9"), RecordingTransport()
    )

    assert other.reply == "That isn't yours to confirm."
    assert github.repo("ann", "web").issues == []
