from __future__ import annotations

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from aisystem.errors import EncryptionKeyError
from aisystem.models import ApiCredential, IntegrationAccount, TelegramSession
from tests.factories import ApiCredentialFactory, TelegramSessionFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-ant-api03-THIS-IS-THE-SECRET"


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_secrets_are_encrypted_in_the_database_and_decrypted_on_read() -> None:
    key = ApiCredentialFactory(secret=SECRET)
    stored = raw_column("aisystem_apicredential", "secret", key.pk)
    assert SECRET not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert ApiCredential.objects.get(pk=key.pk).secret == SECRET


def test_oauth_token_payloads_are_encrypted_too() -> None:
    account = IntegrationAccount.objects.create(
        user=UserFactory(),
        provider="github",
        uid="7",
        extra_data={"access_token": "gho_SECRET", "refresh_token": "ghr_SECRET"},
    )
    stored = raw_column("aisystem_integrationaccount", "extra_data", account.pk)
    assert "SECRET" not in stored
    assert IntegrationAccount.objects.get(pk=account.pk).extra_data["access_token"] == "gho_SECRET"


def test_a_wrong_key_raises_instead_of_returning_ciphertext(settings: object) -> None:
    key = ApiCredentialFactory(secret=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # type: ignore[attr-defined]
    with pytest.raises(EncryptionKeyError, match="FIELD_ENCRYPTION_KEYS"):
        ApiCredential.objects.get(pk=key.pk)


def test_equality_lookups_on_secrets_are_refused() -> None:
    with pytest.raises(Exception, match="Unsupported lookup 'exact' for EncryptedTextField"):
        list(ApiCredential.objects.filter(secret=SECRET))


def test_rotation_re_encrypts_every_secret_under_the_newest_key(settings: object) -> None:
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]  # type: ignore[attr-defined]
    credential = ApiCredentialFactory(secret=SECRET)
    session = TelegramSessionFactory()
    account = IntegrationAccount.objects.create(
        user=UserFactory(), provider="github", uid="9", extra_data={"access_token": "gho_X"}
    )
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]  # type: ignore[attr-defined]

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "aisystem.ApiCredential.secret: 1 re-encrypted" in out.getvalue()
    assert SECRET not in out.getvalue()

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # type: ignore[attr-defined]
    assert ApiCredential.objects.get(pk=credential.pk).secret == SECRET
    assert TelegramSession.objects.get(pk=session.pk).session_string == session.session_string
    assert IntegrationAccount.objects.get(pk=account.pk).extra_data == {"access_token": "gho_X"}
    token = raw_column("aisystem_apicredential", "secret", credential.pk)
    assert Fernet(new_key).decrypt(token.encode()).decode() == SECRET


def test_rotation_without_the_old_key_fails_clearly_and_changes_nothing(settings: object) -> None:
    credential = ApiCredentialFactory(secret=SECRET)
    before = raw_column("aisystem_apicredential", "secret", credential.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEYS"):
        call_command("rotate_encryption_keys", stdout=StringIO())
    assert raw_column("aisystem_apicredential", "secret", credential.pk) == before


def test_dumpdata_never_writes_secrets_into_fixtures() -> None:
    ApiCredentialFactory(secret=SECRET)
    TelegramSessionFactory()
    out = StringIO()
    call_command("dumpdata", "aisystem", stdout=out)
    dumped = out.getvalue()
    assert SECRET not in dumped and "SECRET" not in dumped
    credential = next(o for o in json.loads(dumped) if o["model"] == "aisystem.apicredential")
    assert "secret" not in credential["fields"]
