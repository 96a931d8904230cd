"""Connected accounts made directly, as if the person had gone through the web flow."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from aisystem.integrations.accounts import identity_user_ensure
from aisystem.models import Chat, ChatType, Identity, IntegrationAccount
from tests.factories import ChatFactory, IdentityFactory
from tests.fakes.github import FakeGitHub


def person(username: str) -> tuple[Identity, Chat]:
    """A Telegram identity and its private chat."""
    identity = IdentityFactory(username=username)
    return identity, ChatFactory(chat_type=ChatType.PRIVATE, external_id=identity.external_id)


def github_account(
    fake: FakeGitHub, identity: Identity, chat: Chat | None = None, *, expired: bool = False
) -> IntegrationAccount:
    """``identity`` connected to a new GitHub user of the same username."""
    login = identity.username
    github_user = fake.add_user(login, email=f"{login}@example.test")
    tokens = fake.issue_tokens(login, scope="repo,read:user,user:email")
    user = identity_user_ensure(identity)
    lifetime = tokens.expires_in
    expires_at = None if lifetime is None else timezone.now() + timedelta(seconds=lifetime)
    if expired and tokens.refresh_token is not None:
        fake.expire(tokens.access_token)
        expires_at = timezone.now() - timedelta(seconds=1)
    return IntegrationAccount.objects.create(
        user=user,
        provider="github",
        uid=str(github_user.id),
        extra_data=tokens.as_json(),
        login=f"@{login}",
        scopes="repo read:user user:email",
        expires_at=expires_at,
        notify_chat=chat,
        notify_identity=identity,
    )
