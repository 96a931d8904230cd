"""Encryption of secrets at rest: one MultiFernet built from FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, which is what makes rotation possible
(``manage.py rotate_encryption_keys`` re-encrypts everything under the first key).
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from aisystem.errors import EncryptionKeyError

WRONG_KEY_HINT = (
    "a stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS. "
    "Set FIELD_ENCRYPTION_KEYS to include the key the data was written with "
    "(newest first, comma-separated)."
)


@functools.cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEYS])


@receiver(setting_changed)
def _reset_on_key_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Return the plaintext. Raises EncryptionKeyError; never returns the ciphertext."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError):
        raise EncryptionKeyError(WRONG_KEY_HINT) from None


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the newest key (raises EncryptionKeyError like decrypt)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError):
        raise EncryptionKeyError(WRONG_KEY_HINT) from None


def is_current(token: str) -> bool:
    """True if ``token`` was written with the newest key (nothing to rotate)."""
    newest = Fernet(settings.FIELD_ENCRYPTION_KEYS[0])
    try:
        newest.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True
