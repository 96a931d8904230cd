"""Write-only secret fields for the admin.

A secret is never rendered back, not even masked: the input is a password box that renders
empty, and leaving it empty on a change form keeps the stored value.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from aisystem.fields import EncryptedTextField


class SecretFieldsForm(forms.ModelForm):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._secret_fields = [
            f.name
            for f in self._meta.model._meta.concrete_fields
            if isinstance(f, EncryptedTextField) and f.name in self.fields
        ]
        for name in self._secret_fields:
            model_field = self._meta.model._meta.get_field(name)
            stored = bool(self.instance.pk and getattr(self.instance, name))
            self.fields[name] = forms.CharField(
                label=model_field.verbose_name.capitalize(),
                required=not model_field.blank and not stored,
                strip=True,
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
                help_text=(
                    "A value is stored. Type a new one to replace it, or leave empty to keep it."
                    if stored
                    else "Write-only: it is encrypted and never shown again."
                ),
            )
            self.initial[name] = ""

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name in self._secret_fields:
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


class SecretFieldsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Use for every model with encrypted fields: write-only inputs, deferred on list pages."""

    form = SecretFieldsForm

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        secret_names = [
            f.name for f in self.model._meta.concrete_fields if isinstance(f, EncryptedTextField)
        ]
        return super().get_queryset(request).defer(*secret_names)
