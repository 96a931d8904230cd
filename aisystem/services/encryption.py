from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models, transaction

from aisystem.fields import EncryptedTextField


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[models.Model]
    field: str

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field}"


def encrypted_columns() -> list[EncryptedColumn]:
    """Every encrypted field of every installed model."""
    return [
        EncryptedColumn(model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def encryption_keys_rotate(*, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every secret under the newest key of FIELD_ENCRYPTION_KEYS.

    Reading decrypts with any configured key; writing encrypts with the first. Rows are
    rewritten with ``update()`` so no signals fire and no timestamps move. Raises
    EncryptionKeyError if a value cannot be decrypted with any key (nothing is lost: the
    batch in progress rolls back). Returns rows rewritten per column.
    """
    rewritten: dict[str, int] = {}
    for column in encrypted_columns():
        manager = column.model._default_manager
        count = 0
        last_pk = None
        while True:
            page = manager.order_by("pk")
            if last_pk is not None:
                page = page.filter(pk__gt=last_pk)
            rows = list(page.values_list("pk", column.field)[:batch_size])
            if not rows:
                break
            with transaction.atomic():
                for pk, value in rows:
                    if value in (None, "", {}):
                        continue
                    manager.filter(pk=pk).update(**{column.field: value})
                    count += 1
            last_pk = rows[-1][0]
        rewritten[column.label] = count
    return rewritten
