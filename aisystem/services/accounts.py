from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from aisystem.models import AccessAction, AccessRule, Transport


@dataclass(frozen=True)
class SuperuserOutcome:
    username: str
    created: bool
    generated_password: str | None = None
    chat_rule: AccessRule | None = None


def browser_chat_allow(username: str) -> AccessRule:
    """An allow rule for ``username``'s browser chat, so a new installation answers its owner
    at ``/chat/`` at once (the gate denies everyone else until staff add rules)."""
    last = AccessRule.objects.order_by("-position").values_list("position", flat=True).first()
    return AccessRule.objects.create(
        action=AccessAction.ALLOW,
        transport=Transport.WEB,
        username=username,
        position=(last or 0) + 10,
        description="The first superuser may use the browser chat (made by ensure_superuser).",
    )


def superuser_ensure(
    *, username: str | None, email: str | None, password: str | None
) -> SuperuserOutcome:
    """Make sure staff can sign in to the admin.

    With a username (from DJANGO_SUPERUSER_*), that superuser is created if missing; an
    existing account is left alone (its password is not reset). Without one, nothing happens
    if any superuser exists; otherwise "admin" is created with a generated password, which is
    returned so the caller can print it once. A superuser created here also gets an allow
    rule for the browser chat (``browser_chat_allow``); an existing one is left as staff set it.
    """
    User = get_user_model()
    if username:
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            return SuperuserOutcome(username=username, created=False)
        generated = None if password else secrets.token_urlsafe(12)
        with transaction.atomic():
            User.objects.create_superuser(
                username=username, email=email or "", password=password or generated
            )
            rule = browser_chat_allow(username)
        return SuperuserOutcome(username, True, generated_password=generated, chat_rule=rule)
    first = User.objects.filter(is_superuser=True).order_by("pk").first()
    if first is not None:
        return SuperuserOutcome(username=first.get_username(), created=False)
    generated = secrets.token_urlsafe(12)
    with transaction.atomic():
        User.objects.create_superuser(username="admin", email=email or "", password=generated)
        rule = browser_chat_allow("admin")
    return SuperuserOutcome("admin", created=True, generated_password=generated, chat_rule=rule)
