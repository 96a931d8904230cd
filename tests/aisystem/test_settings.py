from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from aisystem.envconfig import env_bool, env_int, local_secret
from tests.helpers import manage


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh embedded install in tmp_path, independent of the developer's var/."""
    env = {
        "AISYSTEM_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "FIELD_ENCRYPTION_KEYS": "",
    }
    return {**env, **extra}


def test_a_generated_secret_is_kept_in_a_private_file_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    first = local_secret(path, lambda: "generated-1")
    second = local_secret(path, lambda: "generated-2")
    assert first == second == "generated-1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_booleans_accept_common_spellings_and_reject_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_FLAG", "Yes")
    assert env_bool("SOME_FLAG", False) is True
    monkeypatch.setenv("SOME_FLAG", "off")
    assert env_bool("SOME_FLAG", True) is False
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)


def test_numbers_below_their_minimum_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Q_WORKERS", "0")
    with pytest.raises(ImproperlyConfigured, match="Q_WORKERS must be at least 1"):
        env_int("Q_WORKERS", 2, minimum=1)


@pytest.mark.slow  # starts manage.py processes
def test_a_malformed_encryption_key_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    result = manage("check", env=isolated_env(tmp_path, FIELD_ENCRYPTION_KEYS="not-a-key"))
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 1 of 1 is not a Fernet key" in result.stderr


@pytest.mark.slow  # starts manage.py processes
def test_a_wrong_encryption_key_stops_start_up_instead_of_returning_ciphertext(
    tmp_path: Path,
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert (
        manage("migrate", env=isolated_env(tmp_path, FIELD_ENCRYPTION_KEYS=old_key)).returncode == 0
    )
    created = manage(
        "shell",
        "-c",
        "from aisystem.models import ApiCredential;"
        "ApiCredential.objects.create(label='main', secret='sk-ant-wrong-key-test')",
        env=isolated_env(tmp_path, FIELD_ENCRYPTION_KEYS=old_key),
    )
    assert created.returncode == 0, created.stderr

    with_wrong_key = isolated_env(tmp_path, FIELD_ENCRYPTION_KEYS=new_key)
    for command in (["migrate"], ["check", "--database", "default"]):
        result = manage(*command, env=with_wrong_key)
        assert result.returncode != 0, command
        assert "aisystem.E001" in result.stderr
        assert "FIELD_ENCRYPTION_KEYS" in result.stderr
        assert "sk-ant-wrong-key-test" not in result.stdout + result.stderr

    # The missing-key case of the embedded default: the generated key file was lost.
    assert manage("check", "--database", "default", env=isolated_env(tmp_path)).returncode != 0


@pytest.mark.slow  # starts manage.py processes
def test_the_embedded_default_generates_its_secrets_on_first_run(tmp_path: Path) -> None:
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, len(settings.SECRET_KEY))",
        env={**isolated_env(tmp_path), "DEBUG": "", "SECRET_KEY": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["False", "50"]
    for name in ("secret_key", "field_encryption_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


@pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="SQLite pragmas only apply to the embedded default; the Postgres run has none",
)
@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_immediate_transactions() -> None:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 20000
    assert connection.transaction_mode == "IMMEDIATE"
