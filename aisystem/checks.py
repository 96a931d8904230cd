"""System checks: configuration mistakes stop start-up with a message naming the setting.

``migrate`` (run by ``make run``) and ``check --database default`` run the database checks.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from aisystem.errors import EncryptionKeyError


@register(Tags.database)
def check_encryption_keys_decrypt(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Decrypt the newest stored secret of every encrypted column with the configured keys."""
    if not databases:
        return []
    from aisystem.services.encryption import encrypted_columns

    errors: list[CheckMessage] = []
    for column in encrypted_columns():
        try:
            list(column.model._default_manager.order_by("-pk").values_list(column.field)[:3])
        except EncryptionKeyError:
            errors.append(
                Error(
                    f"{column.label} cannot be decrypted with FIELD_ENCRYPTION_KEYS.",
                    hint=(
                        "Set FIELD_ENCRYPTION_KEYS to the key(s) this database was written "
                        "with, newest first. In the embedded default the key lives in "
                        f"{settings.DATA_DIR / 'field_encryption_key'}."
                    ),
                    id="aisystem.E001",
                )
            )
        except DatabaseError:
            return []  # not migrated yet: nothing stored, nothing to check
    return errors


@register()
def check_encryption_keys_shared(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A key generated on one machine cannot decrypt rows written through another."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if settings.FIELD_ENCRYPTION_KEYS_FROM_ENV or engine.endswith("sqlite3"):
        return []
    return [
        Warning(
            "FIELD_ENCRYPTION_KEYS is not set; secrets are encrypted with a key generated in "
            f"{settings.DATA_DIR}, which other machines sharing this database do not have.",
            hint="Set FIELD_ENCRYPTION_KEYS to the same value on every process.",
            id="aisystem.W001",
        )
    ]


@register(Tags.security)
def check_data_directory_private(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The data directory holds every conversation and the generated keys; settings.py makes
    it 0700, which fails only for a directory this process does not own."""
    try:
        mode = stat.S_IMODE(Path(settings.DATA_DIR).stat().st_mode)
    except OSError:
        return []
    if not mode & 0o077:
        return []
    return [
        Warning(
            f"The data directory {settings.DATA_DIR} is open to other users (mode {mode:o}).",
            hint=f"Run: chmod 700 {settings.DATA_DIR} (as its owner).",
            id="aisystem.W002",
        )
    ]
