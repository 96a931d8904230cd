"""A deployment as Django deployments are made: ``migrate`` alone gives a working install,
``check --deploy`` has nothing to say about the documented production settings, and the data
directory is private whatever the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.management.utils import get_random_secret_key

from pipeline.fakeclaude import FakeClaude, Scenario
from tests.browser import background, daphne_args
from tests.conftest import PRIMARY_KEY
from tests.helpers import ROOT, free_port, manage

pytestmark = pytest.mark.slow  # starts manage.py and daphne processes

PRODUCTION = {
    "DEBUG": "false",
    "SECURE_COOKIES": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "ALLOWED_HOSTS": "assistant.example.com",
}


def fresh_install(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a new embedded install in ``data_dir``, nothing shared with the
    test run's database or the developer's ``var/``."""
    skip = {"DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEYS", "SECRET_KEY", "DEBUG"}
    # Emptied rather than left out: ``manage`` adds this process's environment back, and an
    # empty value is an unset one to the settings.
    env = dict(os.environ) | dict.fromkeys(skip, "") | {"DEBUG": "false"}
    return env | {"AISYSTEM_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"} | extra


def post_message(port: int, token: str, text: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/messages",
        data=json.dumps({"chat_id": "ops", "user_id": "ada", "text": text}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")}


def test_an_install_made_by_migrate_alone_answers_a_message(
    tmp_path: Path, fake_claude: FakeClaude
) -> None:
    fake_claude.set_scenario(Scenario(name="hello", reply_text="Hello from a fresh install."))
    env = fresh_install(
        tmp_path / "data",
        ANTHROPIC_BASE_URL=fake_claude.base_url,
        ANTHROPIC_API_KEY=PRIMARY_KEY,
    )
    migrated = manage("migrate", "--noinput", env=env, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    created = manage("createapitoken", "--name", "deploy test", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]

    port = free_port()
    with background(daphne_args(port), env, tmp_path / "daphne.log", port):
        status, body = post_message(port, token, "Are you there?")

    assert status == 200, f"{body}\n{(tmp_path / 'daphne.log').read_text()[-3000:]}"
    assert (body["status"], body["reply"]) == ("answered", "Hello from a fresh install.")


def test_migrating_back_drops_the_cache_table_and_forward_makes_it_again(
    tmp_path: Path,
) -> None:
    env = fresh_install(tmp_path / "data")
    script = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "print('aisystem_cache' in connection.introspection.table_names())\n"
    )

    def has_cache_table() -> str:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env | {"DJANGO_SETTINGS_MODULE": "aisystem.settings"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert manage("migrate", "--noinput", env=env, timeout=300).returncode == 0
    assert has_cache_table() == "True"
    back = manage("migrate", "aisystem", "0010_message_lease", "--noinput", env=env, timeout=300)
    assert back.returncode == 0, back.stderr
    assert has_cache_table() == "False"
    again = manage("migrate", "--noinput", env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert has_cache_table() == "True"
    # The old way still works alongside: the table exists, createcachetable leaves it be.
    by_hand = manage("createcachetable", env=env)
    assert by_hand.returncode == 0, by_hand.stderr


def test_check_deploy_finds_nothing_with_the_documented_production_settings(
    tmp_path: Path,
) -> None:
    env = fresh_install(tmp_path / "data", SECRET_KEY=get_random_secret_key(), **PRODUCTION)
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_still_warns_when_a_production_setting_is_missing(tmp_path: Path) -> None:
    """The check is not silenced wholesale: without HTTPS redirects it says so."""
    settings = PRODUCTION | {"SECURE_SSL_REDIRECT": "false"}
    env = fresh_install(tmp_path / "data", SECRET_KEY=get_random_secret_key(), **settings)
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


def _umask_022() -> None:
    os.umask(0o022)


MODES = """
import json, os, stat, django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
with connection.cursor() as cursor:  # a write, so that SQLite has its -wal and -shm open
    cursor.execute("CREATE TABLE IF NOT EXISTS h2_probe (x INTEGER)")
    cursor.execute("INSERT INTO h2_probe VALUES (1)")
data = os.environ["AISYSTEM_DATA_DIR"]
names = ["", "aisystem.sqlite3", "aisystem.sqlite3-wal", "aisystem.sqlite3-shm", "secret_key"]
print(json.dumps({name: oct(stat.S_IMODE(os.stat(os.path.join(data, name)).st_mode))
                  for name in names}))
"""


def private_modes(data_dir: Path) -> dict[str, str]:
    """Start a process under umask 022 that migrates and writes, and report the modes of the
    data directory and its files while its database connection is open."""
    result = subprocess.run(
        [sys.executable, "-c", MODES],
        cwd=ROOT,
        env=fresh_install(data_dir) | {"DJANGO_SETTINGS_MODULE": "aisystem.settings"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=_umask_022,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


PRIVATE = {
    "": "0o700",
    "aisystem.sqlite3": "0o600",
    "aisystem.sqlite3-wal": "0o600",
    "aisystem.sqlite3-shm": "0o600",
    "secret_key": "0o600",
}


def test_a_new_data_directory_and_database_are_private_under_umask_022(tmp_path: Path) -> None:
    assert private_modes(tmp_path / "data") == PRIVATE


def test_an_existing_world_readable_install_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    for name in ("aisystem.sqlite3", "aisystem.sqlite3-wal", "aisystem.sqlite3-shm"):
        (data / name).touch()
        (data / name).chmod(0o644)
    assert stat.S_IMODE(data.stat().st_mode) == 0o755
    assert private_modes(data) == PRIVATE
