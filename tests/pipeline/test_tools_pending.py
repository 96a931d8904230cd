"""Changes that wait for the person: proposed by a tool, run once on /confirm, by the
person who was asked, within ten minutes. The real GitHub client runs against the loopback
fake GitHub, so "run once" is counted in issues GitHub actually holds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from aisystem.models import (
    Chat,
    ChatType,
    Event,
    Identity,
    IntegrationAccount,
    IntegrationStatus,
    PendingAction,
    PendingActionStatus,
)
from pipeline.tools import (
    pending,
    pending_action_cancel,
    pending_action_confirm,
    pending_action_decide,
)
from pipeline.tools.github import COMMENT_ISSUE, CREATE_ISSUE
from pipeline.tools.pending import EXPIRED, pending_action_propose
from tests.factories import ChatFactory, IdentityFactory, UserFactory
from tests.fakes.github import FakeGitHub


@pytest.fixture
def github(settings: Any) -> Iterator[FakeGitHub]:
    """The fake GitHub, configured as this installation's GitHub; ann owns ann/web."""
    with FakeGitHub() as fake:
        settings.INTEGRATIONS = {
            **settings.INTEGRATIONS,
            "github": {
                "CLIENT_ID": fake.client_id,
                "CLIENT_SECRET": fake.client_secret,
                "URL": fake.base_url,
                "API_URL": fake.api_url,
            },
        }
        fake.add_user("ann")
        fake.add_repo("ann", "web")
        yield fake


def connected(fake: FakeGitHub, login: str) -> Identity:
    """A Telegram person whose GitHub account ``login`` is connected."""
    identity = IdentityFactory(username=login)
    user = UserFactory(username=f"user-{login}")
    Identity.objects.filter(pk=identity.pk).update(user=user)
    tokens = fake.issue_tokens(login)
    IntegrationAccount.objects.create(
        user=user,
        provider="github",
        uid=login,
        extra_data={"access_token": tokens.access_token},
        login=f"@{login}",
        scopes=tokens.scope,
        status=IntegrationStatus.CONNECTED,
    )
    identity.refresh_from_db()
    return identity


def propose_issue(identity: Identity, chat: Chat, title: str = "Fix login") -> int:
    proposal = CREATE_ISSUE.prepare({"repo": "ann/web", "title": title, "body": "It fails."})
    return pending_action_propose(
        tool=CREATE_ISSUE.spec.name,
        arguments=proposal.arguments,
        summary=proposal.summary,
        identity_id=identity.pk,
        chat_id=chat.pk,
    )


def issues(fake: FakeGitHub) -> list[str]:
    return [issue.title for issue in fake.repo("ann", "web").issues]


@pytest.mark.django_db
def test_a_proposed_issue_is_created_only_when_the_person_confirms(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)

    assert issues(github) == []
    reply = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert issues(github) == ["Fix login"]
    assert reply.startswith("Created issue #")
    assert f"{github.base_url}ann/web/issues/" in reply
    action = PendingAction.objects.get(pk=action_id)
    assert (action.status, action.result) == (PendingActionStatus.DONE, reply)
    kinds = set(Event.objects.values_list("kind", flat=True))
    assert {"action.proposed", "action.done"} <= kinds


@pytest.mark.django_db
def test_the_summary_says_exactly_what_would_happen(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action = PendingAction.objects.get(pk=propose_issue(ann, chat))

    assert action.summary == "Create issue “Fix login” in ann/web"
    assert action.expires_at - action.created_at == timedelta(minutes=10)


@pytest.mark.django_db
def test_a_second_confirmation_does_not_run_it_again(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)
    first = pending_action_confirm(identity_id=ann.pk, action_id=action_id)

    again = pending_action_confirm(identity_id=ann.pk, action_id=action_id)
    bare = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert issues(github) == ["Fix login"]
    assert again == f"That's done already. {first}"
    assert bare == "There's nothing waiting for your confirmation."


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirmations_create_the_issue_exactly_once(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)
    start, checked = threading.Barrier(6), threading.Barrier(6, timeout=10)
    replies: list[str] = []
    first_check = threading.local()
    check = pending._refusal

    def every_tap_passes_the_checks_together(action: PendingAction, **kwargs: Any) -> str | None:
        refusal = check(action, **kwargs)
        if not getattr(first_check, "done", False):
            first_check.done = True
            checked.wait()  # all six saw it pending: only the conditional UPDATE decides
        return refusal

    monkeypatch.setattr(pending, "_refusal", every_tap_passes_the_checks_together)

    def tap() -> None:
        start.wait()
        try:
            replies.append(pending_action_confirm(identity_id=ann.pk, action_id=action_id))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tap) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert issues(github) == ["Fix login"]
    assert len(replies) == 6
    assert sum(reply.startswith("Created issue") for reply in replies) == 1
    posts = [r for r in github.api_requests if r.method == "POST" and r.path.endswith("/issues")]
    assert len(posts) == 1


@pytest.mark.django_db
def test_only_the_person_who_was_asked_can_confirm(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory(chat_type=ChatType.GROUP)
    bob = IdentityFactory(username="bob")
    action_id = propose_issue(ann, chat)

    by_id = pending_action_confirm(identity_id=bob.pk, action_id=action_id)
    in_chat = pending_action_confirm(identity_id=bob.pk, chat_id=chat.pk)
    tapped = pending_action_decide(action_id=action_id, identity_id=bob.pk, decision="confirm")
    cancel = pending_action_cancel(identity_id=bob.pk, action_id=action_id)

    assert by_id == in_chat == tapped == "That isn't yours to confirm."
    assert cancel == "That isn't yours to cancel."
    assert issues(github) == []
    assert PendingAction.objects.get(pk=action_id).status == PendingActionStatus.PENDING


@pytest.mark.django_db
def test_a_request_expires_after_ten_minutes(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)
    later = timezone.now() + timedelta(minutes=10, seconds=1)

    reply = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk, now=later)

    assert reply == EXPIRED == "That request expired; ask again."
    assert issues(github) == []
    assert PendingAction.objects.get(pk=action_id).status == PendingActionStatus.EXPIRED


@pytest.mark.django_db
def test_a_cancelled_request_is_never_run(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)

    cancelled = pending_action_cancel(identity_id=ann.pk, chat_id=chat.pk)
    confirmed = pending_action_confirm(identity_id=ann.pk, action_id=action_id)

    assert cancelled == "Cancelled: Create issue “Fix login” in ann/web."
    assert confirmed == "That was cancelled; ask again if you still want it."
    assert issues(github) == []
    assert pending_action_cancel(identity_id=ann.pk, chat_id=chat.pk) is None


@pytest.mark.django_db
def test_the_cancel_button_cancels_and_says_what(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)

    reply = pending_action_decide(action_id=action_id, identity_id=ann.pk, decision="cancel")
    again = pending_action_decide(action_id=action_id, identity_id=ann.pk, decision="cancel")

    assert reply == "Cancelled: Create issue “Fix login” in ann/web."
    assert again == "That was cancelled; ask again if you still want it."


@pytest.mark.django_db
def test_a_new_proposal_replaces_the_one_still_waiting(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    older = propose_issue(ann, chat, title="First idea")
    propose_issue(ann, chat, title="Better idea")

    pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert issues(github) == ["Better idea"]
    assert PendingAction.objects.get(pk=older).status == PendingActionStatus.CANCELLED


@pytest.mark.django_db
def test_a_failed_write_is_stated_and_recorded(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    action_id = propose_issue(ann, chat)
    github.fail_next(
        "POST", "/api/v3/repos/ann/web/issues", 422, body={"message": "Validation Failed"}
    )

    reply = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert reply.startswith("That didn't work: GitHub said:")
    assert "Validation Failed" in reply
    action = PendingAction.objects.get(pk=action_id)
    assert (action.status, action.result) == (PendingActionStatus.FAILED, reply)


@pytest.mark.django_db
def test_a_write_after_the_account_was_disconnected_points_to_connect(
    github: FakeGitHub,
) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    propose_issue(ann, chat)
    IntegrationAccount.objects.all().delete()

    reply = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert "isn't connected" in reply and "/connect github" in reply


@pytest.mark.django_db
def test_a_refused_token_marks_the_account_and_asks_to_reconnect(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    propose_issue(ann, chat)
    github.revoke_authorization("ann")

    reply = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert "needs reconnecting" in reply and "/connect github" in reply
    assert IntegrationAccount.objects.get().status == IntegrationStatus.NEEDS_RECONNECT


@pytest.mark.django_db
def test_a_comment_is_posted_on_confirmation_with_its_link(github: FakeGitHub) -> None:
    ann, chat = connected(github, "ann"), ChatFactory()
    issue = github.add_issue("ann", "web", "Broken")
    proposal = COMMENT_ISSUE.prepare({"repo": "ann/web", "number": issue.number, "body": "On it"})
    pending_action_propose(
        tool=COMMENT_ISSUE.spec.name,
        arguments=proposal.arguments,
        summary=proposal.summary,
        identity_id=ann.pk,
        chat_id=chat.pk,
    )

    reply = pending_action_confirm(identity_id=ann.pk, chat_id=chat.pk)

    assert proposal.summary == f"Comment on issue #{issue.number} in ann/web: “On it”"
    assert reply.startswith(f"Commented on issue #{issue.number} in ann/web: http")
    assert "#issuecomment-" in reply


@pytest.mark.django_db
def test_with_nothing_waiting_confirm_and_cancel_say_so() -> None:
    person, chat = IdentityFactory(), ChatFactory()

    assert pending_action_confirm(identity_id=person.pk, chat_id=chat.pk) == (
        "There's nothing waiting for your confirmation."
    )
    assert pending_action_cancel(identity_id=person.pk, chat_id=chat.pk) is None
    assert pending_action_decide(action_id=999, identity_id=person.pk, decision="cancel") == (
        "There's no request number 999."
    )
