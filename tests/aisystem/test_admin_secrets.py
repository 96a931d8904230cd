"""Secrets in the admin are write-only: typed in, stored encrypted, never rendered back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.urls import reverse

from aisystem.models import (
    ApiCredential,
    IntegrationAccount,
    TelegramSession,
    WebhookSubscription,
)
from tests.factories import ApiCredentialFactory, TelegramSessionFactory, UserFactory

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class SecretCase:
    """One model with encrypted fields, and how to fill its admin form."""

    model: type[Model]
    create: Callable[[], Model]
    secrets: dict[str, str]  # field name -> plaintext stored by ``create``
    form_data: Callable[[Model | None], dict[str, Any]] = field(repr=False)
    label: str = ""

    @property
    def url_name(self) -> str:
        return f"admin:aisystem_{self.model._meta.model_name}"

    def __str__(self) -> str:
        return self.model.__name__


def _credential_form(obj: Any) -> dict[str, Any]:
    return {
        "provider": "anthropic",
        "label": obj.label if obj else "primary",
        "secret": "",
        "priority": "0",
        "status": "active",
        "cooldown_until_0": "",
        "cooldown_until_1": "",
    }


def _session_form(obj: Any) -> dict[str, Any]:
    return {
        "name": obj.name if obj else "main",
        "mode": "bot",
        "api_id": "12345",
        "api_hash": "",
        "session_string": "",
        "is_enabled": "on",
    }


def _webhook_form(obj: Any) -> dict[str, Any]:
    return {
        "name": obj.name if obj else "events",
        "url": "https://hooks.example.test/in",
        "signing_secret": "",
        "event_types": "[]",
        "is_active": "on",
    }


CASES = [
    SecretCase(
        model=ApiCredential,
        create=lambda: ApiCredentialFactory(label="primary", secret="sk-ant-PLAINTEXT-credential"),
        secrets={"secret": "sk-ant-PLAINTEXT-credential"},
        form_data=_credential_form,
        label="primary",
    ),
    SecretCase(
        model=TelegramSession,
        create=lambda: TelegramSessionFactory(
            name="main", session_string="BQ-PLAINTEXT-session", api_hash="PLAINTEXT-api-hash"
        ),
        secrets={"session_string": "BQ-PLAINTEXT-session", "api_hash": "PLAINTEXT-api-hash"},
        form_data=_session_form,
        label="main",
    ),
    SecretCase(
        model=WebhookSubscription,
        create=lambda: WebhookSubscription.objects.create(
            name="events",
            url="https://hooks.example.test/in",
            signing_secret="whsec-PLAINTEXT-signing",
        ),
        secrets={"signing_secret": "whsec-PLAINTEXT-signing"},
        form_data=_webhook_form,
        label="events",
    ),
]

secret_case = pytest.mark.parametrize("case", CASES, ids=str)


def assert_no_secret(html: str, case: SecretCase) -> None:
    for name, plaintext in case.secrets.items():
        assert plaintext not in html, f"{name} leaked into the page"


def raw_column(model: type[Model], column: str, pk: int) -> str:
    """The column as stored, bypassing the model field (names come from _meta, not input)."""
    quote = connection.ops.quote_name
    sql = f"SELECT {quote(column)} FROM {quote(model._meta.db_table)} WHERE id = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        return str(cursor.fetchone()[0])


@secret_case
def test_secrets_are_never_rendered_on_the_changelist(staff_client: Any, case: SecretCase) -> None:
    case.create()

    response = staff_client.get(reverse(f"{case.url_name}_changelist"))

    assert response.status_code == 200
    assert case.label in response.content.decode()
    assert_no_secret(response.content.decode(), case)


@secret_case
def test_secrets_are_never_rendered_in_a_changelist_search_result(
    staff_client: Any, case: SecretCase
) -> None:
    case.create()

    response = staff_client.get(reverse(f"{case.url_name}_changelist"), {"q": case.label})

    assert response.status_code == 200
    assert "0 of 1 selected" in response.content.decode()
    assert_no_secret(response.content.decode(), case)


@secret_case
def test_secrets_are_never_rendered_on_the_change_page_not_even_masked(
    staff_client: Any, case: SecretCase
) -> None:
    obj = case.create()

    response = staff_client.get(reverse(f"{case.url_name}_change", args=[obj.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert_no_secret(html, case)
    for name in case.secrets:
        assert f'type="password" name="{name}"' in html
        assert f'name="{name}" value=' not in html
    assert "A value is stored" in html
    assert "*****" not in html


@secret_case
def test_typed_secrets_are_not_echoed_when_the_add_form_is_shown_again_with_errors(
    staff_client: Any, case: SecretCase
) -> None:
    data = {**case.form_data(None), **case.secrets, "name": "", "label": ""}

    response = staff_client.post(reverse(f"{case.url_name}_add"), data)

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert_no_secret(response.content.decode(), case)
    assert not case.model.objects.exists()


@secret_case
def test_typed_secrets_are_not_echoed_when_the_change_form_is_shown_again_with_errors(
    staff_client: Any, case: SecretCase
) -> None:
    obj = case.create()
    replacement = {name: f"{value}-NEW" for name, value in case.secrets.items()}
    data = {**case.form_data(obj), **replacement, "name": "", "label": ""}

    response = staff_client.post(reverse(f"{case.url_name}_change", args=[obj.pk]), data)

    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html
    assert_no_secret(html, case)
    for plaintext in replacement.values():
        assert plaintext not in html
    obj.refresh_from_db()
    for name, plaintext in case.secrets.items():
        assert getattr(obj, name) == plaintext


@secret_case
def test_secrets_are_never_rendered_in_the_history(staff_client: Any, case: SecretCase) -> None:
    obj = case.create()
    replacement = {name: f"{value}-NEW" for name, value in case.secrets.items()}
    staff_client.post(
        reverse(f"{case.url_name}_change", args=[obj.pk]), {**case.form_data(obj), **replacement}
    )

    response = staff_client.get(reverse(f"{case.url_name}_history", args=[obj.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Changed" in html
    assert_no_secret(html, case)


@secret_case
def test_secrets_are_never_rendered_on_the_delete_confirmation(
    staff_client: Any, case: SecretCase
) -> None:
    obj = case.create()

    response = staff_client.get(reverse(f"{case.url_name}_delete", args=[obj.pk]))

    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
    assert_no_secret(response.content.decode(), case)


@secret_case
def test_saving_with_the_secret_inputs_left_empty_keeps_the_stored_secrets(
    staff_client: Any, case: SecretCase
) -> None:
    obj = case.create()

    response = staff_client.post(
        reverse(f"{case.url_name}_change", args=[obj.pk]), case.form_data(obj)
    )

    assert response.status_code == 302
    obj.refresh_from_db()
    for name, plaintext in case.secrets.items():
        assert getattr(obj, name) == plaintext


@secret_case
def test_typing_a_new_secret_replaces_the_stored_one(staff_client: Any, case: SecretCase) -> None:
    obj = case.create()
    replacement = {name: f"{value}-NEW" for name, value in case.secrets.items()}

    response = staff_client.post(
        reverse(f"{case.url_name}_change", args=[obj.pk]), {**case.form_data(obj), **replacement}
    )

    assert response.status_code == 302
    obj.refresh_from_db()
    for name, plaintext in replacement.items():
        assert getattr(obj, name) == plaintext


@secret_case
def test_secrets_added_through_the_admin_are_stored_encrypted(
    staff_client: Any, case: SecretCase
) -> None:
    response = staff_client.post(
        reverse(f"{case.url_name}_add"), {**case.form_data(None), **case.secrets}
    )

    assert response.status_code == 302
    obj = case.model.objects.get()
    for name, plaintext in case.secrets.items():
        stored = raw_column(case.model, name, obj.pk)
        assert plaintext not in stored
        assert stored.startswith("gAAAA")  # a Fernet token
        assert getattr(obj, name) == plaintext


def test_a_credential_cannot_be_added_without_a_secret(staff_client: Any) -> None:
    response = staff_client.post(
        reverse("admin:aisystem_apicredential_add"), _credential_form(None)
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ApiCredential.objects.exists()


def test_a_credential_secret_typed_with_spaces_around_it_is_stored_trimmed(
    staff_client: Any,
) -> None:
    staff_client.post(
        reverse("admin:aisystem_apicredential_add"),
        {**_credential_form(None), "secret": "  sk-ant-pasted-with-spaces \n"},
    )

    assert ApiCredential.objects.get().secret == "sk-ant-pasted-with-spaces"


def make_integration_account() -> IntegrationAccount:
    return IntegrationAccount.objects.create(
        user=UserFactory(username="octocat"),
        provider="github",
        uid="583231",
        extra_data={"access_token": "oauth-SECRET-token", "refresh_token": "oauth-SECRET-refresh"},
    )


def test_integration_account_tokens_are_never_shown_on_the_list(staff_client: Any) -> None:
    make_integration_account()

    response = staff_client.get(reverse("admin:aisystem_integrationaccount_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "octocat" in html
    assert "oauth-SECRET" not in html
    assert "access_token" not in html


def test_integration_account_tokens_are_never_shown_on_the_change_page(staff_client: Any) -> None:
    account = make_integration_account()

    response = staff_client.get(
        reverse("admin:aisystem_integrationaccount_change", args=[account.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "583231" in html
    assert "oauth-SECRET" not in html
    assert "access_token" not in html


def test_integration_account_tokens_are_never_shown_on_the_delete_confirmation(
    staff_client: Any,
) -> None:
    account = make_integration_account()

    response = staff_client.get(
        reverse("admin:aisystem_integrationaccount_delete", args=[account.pk])
    )

    assert response.status_code == 200
    assert "oauth-SECRET" not in response.content.decode()


def test_integration_account_tokens_are_stored_encrypted() -> None:
    account = make_integration_account()

    stored = raw_column(IntegrationAccount, "extra_data", account.pk)

    assert "oauth-SECRET" not in stored
    account.refresh_from_db()
    assert account.extra_data["access_token"] == "oauth-SECRET-token"
