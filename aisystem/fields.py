"""Encrypted model fields.

Written here rather than taken from a package: the maintained ``django-fernet-encrypted-fields``
derives keys from SECRET_KEY and, on a token it cannot decrypt, returns the stored ciphertext
as the value. Here a wrong key raises EncryptionKeyError, and keys come from
FIELD_ENCRYPTION_KEYS so that SECRET_KEY can be rotated independently.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models.lookups import IsNull

from aisystem import crypto


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text column holding a Fernet token; the model attribute holds the plaintext.

    The empty string is stored as is (no secret to hide). Only ``isnull`` lookups are
    allowed: encryption is randomised, so equality lookups could never match.
    """

    description = "Text encrypted at rest"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Keep secrets out of dumpdata fixtures entirely, plaintext or not.
        kwargs.setdefault("serialize", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        prepared = super().get_prep_value(value)
        if prepared is None or prepared == "":
            return None if prepared is None else ""
        return crypto.encrypt(str(prepared))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return IsNull
        return None


class EncryptedJSONField(EncryptedTextField):
    """JSON encrypted at rest (OAuth token payloads). ``None`` and ``{}`` are valid values."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        text = super().from_db_value(value, expression, connection)
        if text is None or text == "":
            return {}
        return json.loads(text)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return crypto.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))
