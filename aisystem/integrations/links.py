"""One-time connect links: what ``/connect github`` sends.

A link is ``AISYSTEM_PUBLIC_URL`` + ``connect/<token>/``, where the token is a random nonce
signed with the secret key and a timestamp (Django's ``TimestampSigner``). The signature
catches tampering and the timestamp expiry without a database read; the ``ConnectLink`` row
binds the nonce to the identity that asked and makes it single-use: pressing the page's
button starts the flow with a conditional update on ``started_at``, so a second press, a
second tab or someone else with the link gets "already used".
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Literal
from urllib.parse import urljoin

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from aisystem.models import ConnectLink

LIFETIME = timedelta(minutes=10)
_SALT = "aisystem.integrations.connect-link"

Problem = Literal["tampered", "expired", "used", "unknown"]


class LinkProblem(Exception):
    """The link cannot be used; ``problem`` says why, for the page the person sees."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem)


def public_url(path: str) -> str:
    """``path`` made absolute with ``AISYSTEM_PUBLIC_URL``."""
    return urljoin(settings.AISYSTEM_PUBLIC_URL, path.lstrip("/"))


def connect_link_create(*, identity_id: int, chat_id: int | None, provider: str) -> str:
    """A new link for ``identity_id`` to connect ``provider``, valid for ``LIFETIME``;
    ``chat_id`` is told when the account is connected."""
    nonce = secrets.token_urlsafe(24)
    ConnectLink.objects.create(
        nonce=nonce,
        provider=provider,
        identity_id=identity_id,
        chat_id=chat_id,
        expires_at=timezone.now() + LIFETIME,
    )
    token = signing.TimestampSigner(salt=_SALT).sign(nonce)
    return public_url(reverse("integrations:connect", args=[token]))


def connect_link_open(token: str) -> ConnectLink:
    """The unused, unexpired link ``token`` names (for the page); raises ``LinkProblem``."""
    link = _link(token)
    if link.started_at is not None:
        raise LinkProblem("used")
    return link


def connect_link_start(token: str) -> ConnectLink:
    """Spend the link (the button was pressed): exactly one caller gets it, every other one
    gets ``LinkProblem("used")``."""
    link = _link(token)
    now = timezone.now()
    spent = ConnectLink.objects.filter(
        pk=link.pk, started_at__isnull=True, expires_at__gt=now
    ).update(started_at=now)
    if not spent:
        raise LinkProblem("used" if link.expires_at > now else "expired")
    link.started_at = now
    return link


def connect_link_complete(*, link_id: int, account_id: int) -> bool:
    """Record the account the link connected; False if it was completed already."""
    return bool(
        ConnectLink.objects.filter(pk=link_id, completed_at__isnull=True)
        .exclude(started_at=None)
        .update(completed_at=timezone.now(), account_id=account_id)
    )


def connect_links_purge() -> int:
    """Delete links that expired a day ago or more (a scheduled job)."""
    cutoff = timezone.now() - timedelta(days=1)
    deleted, _ = ConnectLink.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


def _link(token: str) -> ConnectLink:
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        nonce = signer.unsign(token, max_age=LIFETIME)
    except signing.SignatureExpired:
        raise LinkProblem("expired") from None
    except signing.BadSignature:
        raise LinkProblem("tampered") from None
    link = ConnectLink.objects.select_related("identity").filter(nonce=nonce).first()
    if link is None:
        raise LinkProblem("unknown")
    if link.expires_at <= timezone.now():
        raise LinkProblem("expired")
    return link
