"""The error language between layers."""

from __future__ import annotations


class AISystemError(Exception):
    """Base of every error this project raises on purpose."""


class EncryptionKeyError(AISystemError):
    """A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS.

    Raised instead of returning ciphertext, so a wrong key can never pass for a value.
    """


class IntegrationError(AISystemError):
    """An external service failed. ``permanent`` says whether retrying can help."""

    def __init__(self, service: str, operation: str, details: str, *, permanent: bool = False):
        self.service = service
        self.operation = operation
        self.details = details
        self.permanent = permanent
        super().__init__(f"{service} {operation} failed: {details}")
