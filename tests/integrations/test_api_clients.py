"""The providers' API clients: the person's own data only, retries that honour Retry-After,
the external-call log without tokens, and errors in the provider's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from aisystem.errors import IntegrationError
from aisystem.integrations.accounts import account_disconnect
from aisystem.integrations.github import GitHubApi
from aisystem.integrations.google import CalendarApi
from aisystem.models import ExternalCall, IntegrationAccount
from tests.fakes.github import FakeGitHub
from tests.fakes.google import FakeGoogle
from tests.integrations.accounts import github_account, person

pytestmark = pytest.mark.django_db


def test_each_person_sees_only_their_own_repositories(github: FakeGitHub) -> None:
    alice, _ = person("alice")
    bob, _ = person("bob")
    alices = github_account(github, alice)
    bobs = github_account(github, bob)
    github.add_repo("alice", "secret-plans", private=True)
    github.add_repo("bob", "garden")

    assert [r["full_name"] for r in GitHubApi(alices.pk).list_repos()] == ["alice/secret-plans"]
    assert [r["full_name"] for r in GitHubApi(bobs.pk).list_repos()] == ["bob/garden"]
    with pytest.raises(IntegrationError, match="404"):
        GitHubApi(bobs.pk).list_issues("alice/secret-plans")


def test_a_502_is_retried_and_every_attempt_is_logged_without_the_token(
    github: FakeGitHub,
) -> None:
    alice, _ = person("alice")
    account = github_account(github, alice)
    github.add_repo("alice", "web")
    github.fail_next("GET", "/api/v3/user/repos", 502)

    repos = GitHubApi(account.pk).list_repos()

    assert len(repos) == 1
    calls = list(ExternalCall.objects.filter(operation="list_repos").order_by("pk"))
    assert [(c.status_code, c.ok) for c in calls] == [(502, False), (200, True)]
    token = account.extra_data["access_token"]
    assert all(token not in f"{c.error}{c.request_id}" for c in calls)


def test_a_rate_limit_with_retry_after_is_waited_out(github: FakeGitHub) -> None:
    alice, _ = person("alice")
    account = github_account(github, alice)
    github.add_repo("alice", "web")
    github.fail_next("GET", "/api/v3/user/repos", 429, retry_after=1)

    assert len(GitHubApi(account.pk).list_repos()) == 1


def test_a_lasting_failure_is_an_integration_error_in_the_providers_words(
    github: FakeGitHub,
) -> None:
    alice, _ = person("alice")
    account = github_account(github, alice)
    github.fail_next("POST", "/api/v3/repos/alice/web/issues", 422, body={"message": "Invalid"})
    github.add_repo("alice", "web")

    with pytest.raises(IntegrationError, match="HTTP 422: Invalid") as caught:
        GitHubApi(account.pk).create_issue("alice/web", title="x")
    assert caught.value.permanent


def test_creating_an_issue_and_a_comment(github: FakeGitHub) -> None:
    alice, _ = person("alice")
    account = github_account(github, alice)
    github.add_repo("alice", "web")
    api = GitHubApi(account.pk)

    issue = api.create_issue("alice/web", title="Fix login", body="It fails.")
    comment = api.comment_issue("alice/web", issue["number"], body="On it.")

    assert issue["html_url"].endswith("/alice/web/issues/1")
    assert comment["html_url"].startswith(issue["html_url"] + "#issuecomment-")
    assert api.get_issue("alice/web", issue["number"])["title"] == "Fix login"
    assert [i["title"] for i in api.list_issues("alice/web")] == ["Fix login"]


def test_disconnect_revokes_at_github_then_deletes(github: FakeGitHub) -> None:
    alice, _ = person("alice")
    account = github_account(github, alice)
    token = account.extra_data["access_token"]

    outcome = account_disconnect(account_id=account.pk)

    assert outcome.revoked
    assert not github.token_is_active(token)
    assert not IntegrationAccount.objects.exists()


def test_disconnect_still_removes_the_account_when_github_cannot_be_reached(
    github: FakeGitHub,
) -> None:
    alice, _ = person("alice")
    account = github_account(github, alice)
    github.fail_next("DELETE", "/api/v3/applications/", 503)

    outcome = account_disconnect(account_id=account.pk)

    assert not outcome.revoked and "503" in outcome.detail
    assert not IntegrationAccount.objects.exists()


def test_google_calendar_lists_and_creates_the_persons_events(google: FakeGoogle) -> None:
    alice, _ = person("alice")
    tokens = google.obtain_tokens("alice-sub", "alice@example.test")
    from aisystem.integrations.accounts import identity_user_ensure

    account = IntegrationAccount.objects.create(
        user=identity_user_ensure(alice),
        provider="google",
        uid="alice-sub",
        extra_data=tokens,
        login="alice@example.test",
    )
    start = datetime(2027, 1, 5, 9, tzinfo=UTC)
    api = CalendarApi(account.pk)

    created = api.create_event(summary="Dentist", start=start, end=start + timedelta(hours=1))
    listed = api.list_events(time_min=start - timedelta(days=1))

    assert created["htmlLink"]
    assert [event["summary"] for event in listed] == ["Dentist"]
    outcome = account_disconnect(account_id=account.pk)
    assert outcome.revoked
    answer = requests.get(
        f"{google.calendar_url}calendars/primary/events",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert answer.status_code == 401
