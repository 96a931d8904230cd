from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from aisystem.models import (
    AccessAction,
    AccessRule,
    ApiToken,
    DailyUsage,
    Direction,
    MessageStatus,
)
from aisystem.services.tokens import api_token_authenticate
from tests.factories import ConversationFactory, IdentityFactory, MessageFactory
from tests.helpers import manage, subprocess_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_createapitoken_prints_a_working_token_on_its_last_line() -> None:
    result = manage(
        "createapitoken", "--name", "ci-bot", env={"DATABASE_URL": subprocess_database_url()}
    )
    assert result.returncode == 0, result.stderr
    plaintext = result.stdout.strip().splitlines()[-1]
    token = api_token_authenticate(plaintext)
    assert token is not None and token.name == "ci-bot"
    assert AccessRule.objects.get(api_token=token).action == AccessAction.ALLOW


def test_createapitoken_refuses_a_duplicate_name_clearly() -> None:
    env = {"DATABASE_URL": subprocess_database_url()}
    assert manage("createapitoken", "--name", "dup", env=env).returncode == 0
    again = manage("createapitoken", "--name", "dup", env=env)
    assert again.returncode != 0
    assert "exists already" in again.stderr
    assert ApiToken.objects.count() == 1


def test_ensure_superuser_prints_a_generated_password_only_once(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SUPERUSER_USERNAME": "",
        "DJANGO_SUPERUSER_PASSWORD": "",
    }
    first = manage("ensure_superuser", env=env)
    assert first.returncode == 0, first.stderr
    assert "Created superuser 'admin' with password" in first.stdout
    second = manage("ensure_superuser", env=env)
    assert "with password" not in second.stdout
    assert "admin (exists)" in second.stdout


def test_ensure_superuser_uses_the_django_superuser_variables() -> None:
    env = {
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SUPERUSER_USERNAME": "ops",
        "DJANGO_SUPERUSER_EMAIL": "ops@example.test",
        "DJANGO_SUPERUSER_PASSWORD": "a-long-Passw0rd",
    }
    result = manage("ensure_superuser", env=env)
    assert "Created superuser 'ops' from DJANGO_SUPERUSER_*" in result.stdout
    assert "a-long-Passw0rd" not in result.stdout


def test_usage_rollup_recomputes_yesterday_and_today_from_the_stored_messages() -> None:
    identity, conversation = IdentityFactory(), ConversationFactory()
    asked = MessageFactory(
        identity=identity,
        chat=conversation.chat,
        conversation=conversation,
        status=MessageStatus.ANSWERED,
    )
    MessageFactory(
        identity=identity,
        chat=conversation.chat,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        reply_to=asked,
        input_tokens=30,
        output_tokens=12,
        cost_usd=Decimal("0.0042"),
    )
    env = {"DATABASE_URL": subprocess_database_url()}

    first = manage("usage_rollup", env=env)
    again = manage("usage_rollup", env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Recomputed 2 day(s) from ")
    assert again.stdout == first.stdout  # idempotent
    row = DailyUsage.objects.get(identity=identity)
    assert (row.messages, row.input_tokens, row.output_tokens) == (1, 30, 12)
    assert row.cost_usd == Decimal("0.0042")


def test_usage_rollup_refuses_what_is_not_a_date_range() -> None:
    env = {"DATABASE_URL": subprocess_database_url()}

    not_a_date = manage("usage_rollup", "--since", "2026-02-30", env=env)
    backwards = manage("usage_rollup", "--since", "2026-03-02", "--until", "2026-03-01", env=env)

    assert not_a_date.returncode != 0 and "'2026-02-30' is not a date" in not_a_date.stderr
    assert backwards.returncode != 0 and "is before --since" in backwards.stderr
