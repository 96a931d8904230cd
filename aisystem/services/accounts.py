from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model


@dataclass(frozen=True)
class SuperuserOutcome:
    username: str
    created: bool
    generated_password: str | None = None


def superuser_ensure(
    *, username: str | None, email: str | None, password: str | None
) -> SuperuserOutcome:
    """Make sure staff can sign in to the admin.

    With a username (from DJANGO_SUPERUSER_*), that superuser is created if missing; an
    existing account is left alone (its password is not reset). Without one, nothing happens
    if any superuser exists; otherwise "admin" is created with a generated password, which is
    returned so the caller can print it once.
    """
    User = get_user_model()
    if username:
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            return SuperuserOutcome(username=username, created=False)
        generated = None if password else secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=username, email=email or "", password=password or generated
        )
        return SuperuserOutcome(username=username, created=True, generated_password=generated)
    first = User.objects.filter(is_superuser=True).order_by("pk").first()
    if first is not None:
        return SuperuserOutcome(username=first.get_username(), created=False)
    generated = secrets.token_urlsafe(12)
    User.objects.create_superuser(username="admin", email=email or "", password=generated)
    return SuperuserOutcome(username="admin", created=True, generated_password=generated)
