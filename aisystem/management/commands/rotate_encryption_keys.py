from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aisystem.errors import EncryptionKeyError
from aisystem.services.encryption import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the newest key. Put the new key first in "
        "FIELD_ENCRYPTION_KEYS (keep the old ones after it), run this, then drop the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = encryption_keys_rotate()
        except EncryptionKeyError as exc:
            raise CommandError(str(exc)) from None
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {sum(counts.values())} secrets re-encrypted."))
