"""What tools accept from Claude and what they send back: input checks, trimming, and the
registry a person gets when no integration is configured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.tools import Tool, ToolFailed, ToolRegistry, tools_for
from pipeline.tools.github import CREATE_ISSUE
from pipeline.tools.inputs import int_arg, repo_arg
from pipeline.tools.registry import RESULT_LIMIT, ToolInputError, trim
from pipeline.types import ToolSpec, ToolUseBlock
from tests.pipeline.builders import context


def use(name: str, **arguments: object) -> ToolUseBlock:
    return ToolUseBlock(id="toolu_01", name=name, input=arguments)


@pytest.mark.parametrize(
    ("given", "repo"),
    [
        ("acme/web", "acme/web"),
        (" acme/web.js ", "acme/web.js"),
        ("https://github.com/acme/web/", "acme/web"),
        ("a-b/c_d", "a-b/c_d"),
    ],
)
def test_a_repository_is_owner_slash_name(given: str, repo: str) -> None:
    assert repo_arg({"repo": given}) == repo


@pytest.mark.parametrize("given", ["web", "acme/web/extra", "acme/..", "-acme/web", "", 42, None])
def test_anything_else_is_refused_with_an_example(given: object) -> None:
    with pytest.raises(
        ToolInputError, match=r"repo must be owner/name, e\.g\. octocat/hello-world"
    ):
        repo_arg({"repo": given})


def test_numbers_may_come_quoted_but_not_as_booleans_or_out_of_range() -> None:
    assert int_arg({"number": "12"}, "number") == 12
    with pytest.raises(ToolInputError, match="whole number"):
        int_arg({"number": True}, "number")
    with pytest.raises(ToolInputError, match="between 1 and 100"):
        int_arg({"per_page": 500}, "per_page", default=30)


def test_an_issue_title_must_be_one_line_and_not_blank() -> None:
    with pytest.raises(ToolInputError, match="single line"):
        CREATE_ISSUE.prepare({"repo": "acme/web", "title": "Fix\nlogin"})
    with pytest.raises(ToolInputError, match="title must not be blank"):
        CREATE_ISSUE.prepare({"repo": "acme/web", "title": "   "})


def test_trimming_says_how_much_was_left_out() -> None:
    text = "x" * 20000

    trimmed = trim(text)

    assert len(trimmed) <= RESULT_LIMIT
    assert trimmed.endswith("characters are shown]")
    assert "of 20000 characters" in trimmed
    assert trim("short") == "short"


async def test_a_long_result_reaches_claude_trimmed() -> None:
    async def chatty(arguments: Mapping[str, object]) -> str:
        return "y" * 50000

    registry = ToolRegistry([Tool(ToolSpec("chatty", "Talks.", {"type": "object"}), chatty)])

    result, record = await registry.call(use("chatty"))

    assert record.ok and not result.is_error
    assert len(result.content) <= RESULT_LIMIT
    assert "trimmed" in result.content


async def test_a_failed_service_comes_back_in_its_own_words() -> None:
    async def refused(arguments: Mapping[str, object]) -> str:
        raise ToolFailed("GitHub failed: HTTP 403: Resource not accessible")

    registry = ToolRegistry([Tool(ToolSpec("refused", "No.", {"type": "object"}), refused)])

    result, record = await registry.call(use("refused"))

    assert result.is_error and not record.ok
    assert result.content == "GitHub failed: HTTP 403: Resource not accessible"


@pytest.mark.django_db
def test_without_configured_providers_only_builtins_are_offered_and_nothing_is_read(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.INTEGRATIONS = {
        name: {**config, "CLIENT_ID": "", "CLIENT_SECRET": ""}
        for name, config in settings.INTEGRATIONS.items()
    }

    with django_assert_num_queries(0):
        registry = tools_for(context())

    assert registry.names() == ("get_current_time", "schedule_reminder")
    assert registry.guidance == ""
