"""What staff see of people's accounts: everything but the token, and a revoke that reaches
the provider."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from aisystem.models import IntegrationAccount
from tests.fakes.github import FakeGitHub
from tests.integrations.accounts import github_account, person

pytestmark = pytest.mark.django_db


def test_the_account_pages_show_login_scopes_and_status_but_never_the_token(
    staff_client: Any, github: FakeGitHub
) -> None:
    alice, chat = person("alice")
    account = github_account(github, alice, chat)
    token = account.extra_data["access_token"]

    listing = staff_client.get(reverse("admin:aisystem_integrationaccount_changelist"))
    detail = staff_client.get(
        reverse("admin:aisystem_integrationaccount_change", args=[account.pk])
    )

    assert listing.status_code == detail.status_code == 200
    assert "@alice" in listing.text and "repo read:user user:email" in listing.text
    assert token not in listing.text and token not in detail.text


def test_staff_revoke_ends_the_grant_at_github_and_removes_the_account(
    staff_client: Any, github: FakeGitHub
) -> None:
    alice, chat = person("alice")
    account = github_account(github, alice, chat)
    token = account.extra_data["access_token"]

    answer = staff_client.post(
        reverse("admin:aisystem_integrationaccount_changelist"),
        {"action": "revoke", "_selected_action": [account.pk]},
        follow=True,
    )

    assert "Removed 1 account; 1 revoked at the provider." in answer.text
    assert not IntegrationAccount.objects.exists()
    assert not github.token_is_active(token)
