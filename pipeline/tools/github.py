"""GitHub tools, with the person's own token (``aisystem.integrations.github.GitHubApi``).

Reads (repositories, issues) run when Claude calls them; creating an issue or a comment is
a ``WriteTool``: it is proposed, and runs only once the person confirms. Results keep the
fields a person asks about (number, title, state, author, labels, link), not GitHub's whole
payload, so a page of issues fits in the result limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aisystem.integrations.github import GitHubApi
from pipeline.tools.actions import Proposal, ProviderTools, ReadTool, WriteTool
from pipeline.tools.inputs import (
    choice_arg,
    compact,
    int_arg,
    one_line,
    repo_arg,
    shorten,
    text_arg,
)
from pipeline.types import ToolSpec

ISSUE_BODY_LIMIT = 4000  # of an issue read back to Claude
WRITE_BODY_LIMIT = 20000  # of an issue or comment Claude writes

_REPO_PROPERTY = {
    "type": "string",
    "description": "The repository as owner/name, e.g. octocat/hello-world.",
}
_PER_PAGE_PROPERTY = {
    "type": "integer",
    "minimum": 1,
    "maximum": 100,
    "description": "How many to return (default 30).",
}


def _issue_brief(issue: Mapping[str, Any]) -> dict[str, Any]:
    brief = {
        "number": issue.get("number"),
        "title": issue.get("title"),
        "state": issue.get("state"),
        "author": (issue.get("user") or {}).get("login"),
        "labels": [label.get("name") for label in issue.get("labels") or [] if label],
        "comments": issue.get("comments"),
        "created_at": issue.get("created_at"),
        "html_url": issue.get("html_url"),
    }
    if issue.get("pull_request"):
        brief["pull_request"] = True  # GitHub lists pull requests among issues
    return brief


def _list_repos(account_id: int, arguments: Mapping[str, object]) -> str:
    per_page = int_arg(arguments, "per_page", default=30)
    repos = GitHubApi(account_id).list_repos(per_page=per_page)
    if not repos:
        return "The person has no repositories."
    return compact(
        [
            {
                "full_name": repo.get("full_name"),
                "private": repo.get("private"),
                "description": shorten(repo.get("description") or "", 200),
                "open_issues": repo.get("open_issues_count"),
                "pushed_at": repo.get("pushed_at"),
                "html_url": repo.get("html_url"),
            }
            for repo in repos
        ]
    )


def _list_issues(account_id: int, arguments: Mapping[str, object]) -> str:
    repo = repo_arg(arguments)
    state = choice_arg(arguments, "state", ("open", "closed", "all"), default="open")
    per_page = int_arg(arguments, "per_page", default=30)
    issues = GitHubApi(account_id).list_issues(repo, state=state, per_page=per_page)
    if not issues:
        which = "" if state == "all" else f"{state} "
        return f"{repo} has no {which}issues."
    return compact([_issue_brief(issue) for issue in issues])


def _get_issue(account_id: int, arguments: Mapping[str, object]) -> str:
    repo = repo_arg(arguments)
    number = int_arg(arguments, "number", maximum=10**9)
    issue = GitHubApi(account_id).get_issue(repo, number)
    detail = _issue_brief(issue) | {
        "assignees": [person.get("login") for person in issue.get("assignees") or [] if person],
        "updated_at": issue.get("updated_at"),
        "closed_at": issue.get("closed_at"),
        "body": shorten(issue.get("body") or "", ISSUE_BODY_LIMIT),
    }
    return compact(detail)


def _prepare_issue(arguments: Mapping[str, object]) -> Proposal:
    repo = repo_arg(arguments)
    title = text_arg(arguments, "title", max_length=256, one_line=True)
    body = text_arg(arguments, "body", required=False, max_length=WRITE_BODY_LIMIT)
    return Proposal(
        arguments={"repo": repo, "title": title, "body": body},
        summary=f"Create issue “{one_line(title, 200)}” in {repo}",
    )


def _create_issue(account_id: int, arguments: Mapping[str, object]) -> str:
    repo, title = str(arguments["repo"]), str(arguments["title"])
    issue = GitHubApi(account_id).create_issue(
        repo, title=title, body=str(arguments.get("body") or "")
    )
    return f"Created issue #{issue.get('number')} “{one_line(title, 200)}” in {repo}: " + str(
        issue.get("html_url") or ""
    )


def _prepare_comment(arguments: Mapping[str, object]) -> Proposal:
    repo = repo_arg(arguments)
    number = int_arg(arguments, "number", maximum=10**9)
    body = text_arg(arguments, "body", max_length=WRITE_BODY_LIMIT)
    return Proposal(
        arguments={"repo": repo, "number": number, "body": body},
        summary=f"Comment on issue #{number} in {repo}: “{one_line(body, 160)}”",
    )


def _comment_issue(account_id: int, arguments: Mapping[str, object]) -> str:
    repo, number = str(arguments["repo"]), int(str(arguments["number"]))
    comment = GitHubApi(account_id).comment_issue(repo, number, body=str(arguments["body"]))
    return f"Commented on issue #{number} in {repo}: {comment.get('html_url') or ''}"


LIST_REPOS = ReadTool(
    spec=ToolSpec(
        name="github_list_repos",
        description=(
            "List the GitHub repositories of the person you are talking to (their own "
            "account), most recently pushed first: full name, visibility, description, "
            "open issue count and link."
        ),
        input_schema={"type": "object", "properties": {"per_page": _PER_PAGE_PROPERTY}},
    ),
    run=_list_repos,
)

LIST_ISSUES = ReadTool(
    spec=ToolSpec(
        name="github_list_issues",
        description=(
            "List issues of a GitHub repository the person can see (pull requests are "
            "marked pull_request). Returns number, title, state, author, labels, comment "
            "count and link of each."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "repo": _REPO_PROPERTY,
                "state": {
                    "type": "string",
                    "enum": ["open", "closed", "all"],
                    "description": "Which issues (default open).",
                },
                "per_page": _PER_PAGE_PROPERTY,
            },
            "required": ["repo"],
        },
    ),
    run=_list_issues,
)

GET_ISSUE = ReadTool(
    spec=ToolSpec(
        name="github_get_issue",
        description=(
            "Read one GitHub issue (or pull request) in full: title, state, author, labels, "
            "assignees, dates, body and link."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "repo": _REPO_PROPERTY,
                "number": {"type": "integer", "minimum": 1, "description": "The issue number."},
            },
            "required": ["repo", "number"],
        },
    ),
    run=_get_issue,
)

CREATE_ISSUE = WriteTool(
    spec=ToolSpec(
        name="github_create_issue",
        description=(
            "Open a new issue in a GitHub repository, as the person. It is not created at "
            "once: the person is asked to confirm first, so call it once, with the final "
            "title and body, and then tell them what you proposed."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "repo": _REPO_PROPERTY,
                "title": {"type": "string", "description": "One line, at most 256 characters."},
                "body": {"type": "string", "description": "The description, in Markdown."},
            },
            "required": ["repo", "title"],
        },
    ),
    prepare=_prepare_issue,
    execute=_create_issue,
)

COMMENT_ISSUE = WriteTool(
    spec=ToolSpec(
        name="github_comment_issue",
        description=(
            "Add a comment to a GitHub issue or pull request, as the person. It is not "
            "posted at once: the person is asked to confirm first, so call it once, with the "
            "final text."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "repo": _REPO_PROPERTY,
                "number": {"type": "integer", "minimum": 1, "description": "The issue number."},
                "body": {"type": "string", "description": "The comment, in Markdown."},
            },
            "required": ["repo", "number", "body"],
        },
    ),
    prepare=_prepare_comment,
    execute=_comment_issue,
)

TOOLS = ProviderTools(
    provider="github",
    label="GitHub",
    reads=(LIST_REPOS, LIST_ISSUES, GET_ISSUE),
    writes=(CREATE_ISSUE, COMMENT_ISSUE),
    guidance="the github_* tools read and change GitHub as them",
)
