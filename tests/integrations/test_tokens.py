"""Tokens: refreshed single-flight across threads, ahead of expiry by the job, and an account
whose grant is gone marked "needs reconnect" with the person told once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from aisystem.integrations.github import GitHubApi
from aisystem.integrations.tokens import NeedsReconnect, access_token, tokens_refresh_due
from aisystem.models import Event, ExternalCall, IntegrationAccount, OutboxItem
from tests.fakes.github import FakeGitHub
from tests.integrations.accounts import github_account, person


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_calls_with_an_expired_token_cause_one_refresh(
    expiring_github: FakeGitHub,
) -> None:
    alice, chat = person("alice")
    account = github_account(expiring_github, alice, chat, expired=True)
    old = account.extra_data["access_token"]
    barrier = threading.Barrier(20)

    def call() -> str:
        barrier.wait()
        try:
            return access_token(account.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        tokens = list(pool.map(lambda _: call(), range(20)))

    assert expiring_github.refresh_requests == 1
    assert len(set(tokens)) == 1 and tokens[0] != old
    assert expiring_github.token_is_active(tokens[0])
    account.refresh_from_db()
    assert account.status == "connected" and account.refresh_lease_until is None


@pytest.mark.django_db
def test_a_tool_call_with_an_expired_token_refreshes_it_first(
    expiring_github: FakeGitHub,
) -> None:
    alice, chat = person("alice")
    account = github_account(expiring_github, alice, chat, expired=True)
    expiring_github.add_repo("alice", "web")

    repos = GitHubApi(account.pk).list_repos()

    assert [repo["full_name"] for repo in repos] == ["alice/web"]
    assert expiring_github.refresh_requests == 1
    assert ExternalCall.objects.filter(service="github", operation="refresh", ok=True).exists()
    account.refresh_from_db()
    new_token = account.extra_data["access_token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT extra_data FROM aisystem_integrationaccount")
        (raw,) = cursor.fetchone()
    assert new_token not in str(raw)  # the refreshed payload is encrypted too


@pytest.mark.django_db
def test_the_job_refreshes_tokens_that_expire_soon_and_leaves_the_others(
    expiring_github: FakeGitHub,
) -> None:
    alice, chat = person("alice")
    bob, bob_chat = person("bob")
    soon = github_account(expiring_github, alice, chat)
    later = github_account(expiring_github, bob, bob_chat)
    IntegrationAccount.objects.filter(pk=soon.pk).update(
        expires_at=soon.expires_at.replace(year=2000)  # type: ignore[union-attr]
    )

    assert tokens_refresh_due(pause_seconds=0) == 1

    assert expiring_github.refresh_requests == 1
    later.refresh_from_db()
    assert later.refreshed_at is None


@pytest.mark.django_db
def test_a_refused_refresh_marks_the_account_and_tells_the_person_once(
    expiring_github: FakeGitHub,
) -> None:
    alice, chat = person("alice")
    account = github_account(expiring_github, alice, chat, expired=True)
    expiring_github.revoke_authorization("alice")

    for _ in range(2):
        with pytest.raises(NeedsReconnect):
            GitHubApi(account.pk).list_repos()

    account.refresh_from_db()
    assert account.status == "needs_reconnect"
    assert Event.objects.filter(kind="integration.needs_reconnect").count() == 1
    notice = OutboxItem.objects.get(chat=chat)
    assert "connect again: http://testserver/connect/" in notice.text


@pytest.mark.django_db
def test_a_401_from_the_api_marks_the_account_needs_reconnect(github: FakeGitHub) -> None:
    alice, chat = person("alice")
    account = github_account(github, alice, chat)
    github.revoke_authorization("alice")

    with pytest.raises(NeedsReconnect):
        GitHubApi(account.pk).list_repos()

    account.refresh_from_db()
    assert account.status == "needs_reconnect"
    assert OutboxItem.objects.filter(chat=chat).count() == 1
