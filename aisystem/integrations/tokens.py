"""The only way to a person's usable access token, and what happens when there is none.

Tokens are refreshed ahead of expiry: the scheduled job ``tokens_refresh_due`` takes those
that expire within ``REFRESH_AHEAD``, in a random order with a random pause between them so
that many tokens expiring together do not become a burst; a tool call that finds its token
expired (or within ``USE_MARGIN`` of it) refreshes it first.

**Single-flight.** Providers rotate refresh tokens, and presenting one twice can make them
revoke the whole grant, so an account is refreshed by one caller at a time across every
process: a caller takes the account's ``refresh_lease_until`` with a conditional UPDATE that
also requires the token it saw (``expires_at``) to be unchanged. The winner refreshes; every
other caller waits, polling the row, until the new token is there (or the lease ran out, and
then competes again). The lease is the database's, not Redis's, so the embedded mode has it.

**Needs reconnect.** When the provider refuses a refresh or answers 401 to the token, the
account is marked ``needs_reconnect`` (once, by a conditional UPDATE), an
``integration.needs_reconnect`` event is recorded, and the person is told once, in the chat
they connected from, with a fresh ``/connect`` link.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from social_core.backends.oauth import BaseOAuth2
from social_core.exceptions import SocialAuthBaseException

from aisystem.errors import IntegrationError
from aisystem.events import PendingEvent, events_record
from aisystem.integrations.base import expiry_from, social_backend
from aisystem.integrations.http import ApiClient, Unauthorized, call_log
from aisystem.integrations.links import connect_link_create
from aisystem.models import Chat, Event, IntegrationAccount, IntegrationStatus
from aisystem.services.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

REFRESH_AHEAD = timedelta(minutes=10)
USE_MARGIN = timedelta(seconds=60)
LEASE = timedelta(seconds=30)
POLL_SECONDS = 0.1
# The token payload keys a refresh answer may replace; anything else in it is not kept.
_TOKEN_KEYS = ("access_token", "refresh_token", "expires_in", "token_type", "id_token", "scope")


class NeedsReconnect(IntegrationError):
    """The account's token is unusable; the person must connect it again."""

    def __init__(self, provider: str, details: str) -> None:
        super().__init__(provider, "token", details, permanent=True)


def access_token(account_id: int) -> str:
    """The account's access token, refreshed first when it is expired or about to be.

    Raises ``NeedsReconnect`` when there is no usable token and ``IntegrationError`` when the
    provider could not be reached to refresh it (retrying later may help)."""
    deadline = time.monotonic() + LEASE.total_seconds() + 5
    while True:
        account = IntegrationAccount.objects.filter(pk=account_id).first()
        if account is None:
            raise NeedsReconnect("integration", "the account is no longer connected")
        if account.status == IntegrationStatus.NEEDS_RECONNECT:
            raise NeedsReconnect(account.provider, "the account needs reconnecting")
        now = timezone.now()
        if account.expires_at is None or account.expires_at > now + USE_MARGIN:
            IntegrationAccount.objects.filter(pk=account.pk).update(last_used_at=now)
            return str(account.extra_data.get("access_token") or "")
        if _lease_take(account):
            return _refresh(account)
        if time.monotonic() > deadline:
            raise IntegrationError(account.provider, "refresh", "another refresh is stuck")
        time.sleep(POLL_SECONDS)


def account_refresh(account_id: int) -> bool:
    """Refresh one account's token now, unless another caller is already doing so; True when
    this call refreshed it."""
    account = IntegrationAccount.objects.filter(pk=account_id).first()
    if account is None or account.status != IntegrationStatus.CONNECTED:
        return False
    if not _lease_take(account):
        return False
    try:
        _refresh(account)
    except IntegrationError as error:
        logger.warning("token refresh failed: %s", error)
        return False
    return True


def tokens_refresh_due(*, pause_seconds: float = 0.5) -> int:
    """The scheduled job: refresh every connected account whose token expires within
    ``REFRESH_AHEAD``, in random order with a random pause between them. Returns how many
    were refreshed."""
    soon = timezone.now() + REFRESH_AHEAD
    due = list(
        IntegrationAccount.objects.filter(
            status=IntegrationStatus.CONNECTED, expires_at__isnull=False, expires_at__lte=soon
        ).values_list("pk", flat=True)
    )
    random.shuffle(due)
    refreshed = 0
    for position, pk in enumerate(due):
        if position:
            time.sleep(random.uniform(0, pause_seconds))
        refreshed += account_refresh(pk)
    return refreshed


def account_mark_needs_reconnect(account_id: int, reason: str) -> bool:
    """Mark the account unusable and tell the person once; False if it already was."""
    changed = IntegrationAccount.objects.filter(
        pk=account_id, status=IntegrationStatus.CONNECTED
    ).update(
        status=IntegrationStatus.NEEDS_RECONNECT,
        last_error=reason[:255],
        refresh_lease_until=None,
    )
    if not changed:
        return False
    account = IntegrationAccount.objects.select_related("notify_chat").get(pk=account_id)
    label = _label(account.provider)
    chat = account.notify_chat
    events_record(
        [
            PendingEvent(
                kind="integration.needs_reconnect",
                summary=f"{label} account {account.login or account.uid} needs reconnecting",
                level=Event.Level.WARNING,
                data={"provider": account.provider, "account_id": account.pk, "reason": reason},
            )
        ],
        transport=chat.transport if chat else "",
        chat_id=chat.pk if chat else None,
    )
    if chat is not None and account.notify_identity_id is not None:
        _tell_reconnect(account, chat, label)
    return True


class ProviderApi:
    """Base of a provider's API client: every call gets the person's current token and a
    401 marks the account ``needs_reconnect``."""

    service: str
    headers: dict[str, str]

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self._client: ApiClient | None = None

    def base_url(self) -> str:
        raise NotImplementedError

    def call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        if self._client is None:
            self._client = ApiClient(
                service=self.service, base_url=self.base_url(), headers=self.headers
            )
        client = self._client
        client.use_token(access_token(self.account_id))
        try:
            return client.request(method, path, operation=operation, params=params, json=json)
        except Unauthorized:
            account_mark_needs_reconnect(self.account_id, f"{operation}: 401 from the provider")
            raise NeedsReconnect(self.service, "the provider no longer accepts the token") from None


def _lease_take(account: IntegrationAccount) -> bool:
    now = timezone.now()
    return bool(
        IntegrationAccount.objects.filter(
            pk=account.pk,
            status=IntegrationStatus.CONNECTED,
            expires_at=account.expires_at,
        )
        .filter(Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now))
        .update(refresh_lease_until=now + LEASE)
    )


def _refresh(account: IntegrationAccount) -> str:
    """Refresh the token of an account whose lease this caller holds."""
    data: dict[str, Any] = dict(account.extra_data)
    refresh_token = str(data.get("refresh_token") or "")
    if not refresh_token:
        account_mark_needs_reconnect(account.pk, "the token expired and cannot be refreshed")
        raise NeedsReconnect(account.provider, "the token expired")
    backend = social_backend(account.provider)
    assert isinstance(backend, BaseOAuth2)  # every provider here is OAuth 2
    started = time.monotonic()
    try:
        answer = backend.refresh_token(refresh_token)
    except SocialAuthBaseException as error:
        # The provider refused (invalid_grant, revoked, malformed): only a new grant helps.
        _call_log(account.provider, started, ok=False, error=type(error).__name__)
        account_mark_needs_reconnect(account.pk, f"refresh refused ({type(error).__name__})")
        raise NeedsReconnect(account.provider, "the provider refused the refresh") from None
    except Exception as error:
        _call_log(account.provider, started, ok=False, error=type(error).__name__)
        IntegrationAccount.objects.filter(pk=account.pk).update(refresh_lease_until=None)
        raise IntegrationError(
            account.provider, "refresh", "the provider could not be reached"
        ) from None
    _call_log(account.provider, started, ok=True)
    data.update({key: answer[key] for key in _TOKEN_KEYS if answer.get(key)})
    now = timezone.now()
    IntegrationAccount.objects.filter(pk=account.pk).update(
        extra_data=data,
        expires_at=expiry_from(answer, now),
        refreshed_at=now,
        last_used_at=now,
        refresh_lease_until=None,
        last_error="",
    )
    return str(data["access_token"])


def _call_log(service: str, started: float, *, ok: bool, error: str = "") -> None:
    call_log(service, "refresh", 200 if ok else None, started, error)


def _label(provider: str) -> str:
    backend = social_backend(provider)
    return str(getattr(backend, "title", "") or provider.title())


def _tell_reconnect(account: IntegrationAccount, chat: Chat, label: str) -> None:
    assert account.notify_identity_id is not None
    if chat.chat_type not in ("private", "web", "api"):
        return  # a link is personal: never posted in a group
    link = connect_link_create(
        identity_id=account.notify_identity_id, chat_id=chat.pk, provider=account.provider
    )
    IntegrationAccount.objects.filter(pk=account.pk).update(reconnect_notified_at=timezone.now())
    outbox_enqueue(
        transport=chat.transport,
        chat_pk=chat.pk,
        text=(
            f"Your {label} connection stopped working, so I can't use it until you connect "
            f"again: {link} (the link works once, for 10 minutes)."
        ),
        idempotency_key=f"integration:{account.pk}:needs-reconnect:{timezone.now():%Y%m%d%H%M%S}",
    )
