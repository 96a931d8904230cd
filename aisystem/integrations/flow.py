"""social-auth pipeline steps (``SOCIAL_AUTH_PIPELINE`` in settings): one pipeline, two flows.

* **Connect** (a ``/connect`` link was spent in this browser session): the account goes to
  the identity that asked for the link, whoever is signed in to this browser, and the flow
  ends on a page of ours without signing anyone in. The chat that asked is told through the
  outbox, so a Telegram chat hears it although the bridge is another process.
* **Sign in** (the sign-in page's "Sign in with …"): only an existing person may sign in,
  either by an account they connected before or by an e-mail address the provider says is
  verified and that exactly one user has. Nobody is created (staff create accounts; the
  gateway spends their Claude budget), and a staff account never signs in this way.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import render
from social_core.backends.base import BaseAuth
from social_core.exceptions import AuthPolicyError, AuthSessionError

from aisystem.events import PendingEvent, events_record
from aisystem.integrations.accounts import identity_user_ensure
from aisystem.integrations.base import expiry_from
from aisystem.integrations.links import connect_link_complete
from aisystem.integrations.registry import PROVIDERS
from aisystem.models import ConnectLink, IntegrationAccount, IntegrationStatus
from aisystem.services.outbox import outbox_enqueue

SESSION_LINK = "aisystem_connect_link"


class ConnectLinkSpent(AuthSessionError):
    def __str__(self) -> str:
        return "This connect link is no longer valid. Ask the assistant for a new one."


class NoSuchPerson(AuthPolicyError):
    def __str__(self) -> str:
        return (
            "No one here has connected this account. Sign in with your username and "
            "password, then connect it from the chat with /connect."
        )


class StaffUsePassword(AuthPolicyError):
    def __str__(self) -> str:
        return "Staff accounts sign in with their username and password."


def connect_user(
    strategy: Any, backend: BaseAuth[Any], *args: Any, user: Any = None, **kwargs: Any
) -> dict[str, Any] | None:
    """In the connect flow, the account's owner is the link's identity's user."""
    link_id = strategy.session_get(SESSION_LINK)
    if not link_id:
        return None
    link = (
        ConnectLink.objects.select_related("identity")
        .filter(pk=link_id, provider=backend.name, completed_at__isnull=True)
        .exclude(started_at=None)
        .first()
    )
    if link is None:
        strategy.session_pop(SESSION_LINK)
        raise ConnectLinkSpent(backend)
    return {"user": identity_user_ensure(link.identity), "connect_link": link}


def sign_in_user(
    backend: BaseAuth[Any],
    response: dict[str, Any],
    *args: Any,
    user: Any = None,
    connect_link: ConnectLink | None = None,
    **kwargs: Any,
) -> dict[str, Any] | None:
    """In the sign-in flow, after ``social_user``: the person is the connected account's
    owner or the one user with the provider-verified e-mail address; else refused."""
    if connect_link is not None:
        return None
    if user is None:
        provider = PROVIDERS.get(backend.name)
        email = provider.verified_email(response) if provider else ""
        if email:
            found = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
            user = found[0] if len(found) == 1 else None
    if user is None:
        raise NoSuchPerson(backend)
    if user.is_staff or user.is_superuser:
        raise StaffUsePassword(backend)
    return {"user": user}


def account_record(
    strategy: Any,
    backend: BaseAuth[Any],
    response: dict[str, Any],
    details: dict[str, Any],
    *args: Any,
    social: IntegrationAccount | None = None,
    connect_link: ConnectLink | None = None,
    **kwargs: Any,
) -> HttpResponse | None:
    """After ``load_extra_data``: the columns people and staff see, and for the connect flow
    the link spent, the event, the chat told and our page (which ends the flow unsigned-in)."""
    provider = PROVIDERS[backend.name]
    assert social is not None
    scopes = str(response.get("scope") or " ".join(provider.scopes)).replace(",", " ")
    fields: dict[str, Any] = {
        "login": provider.account_login(response, details)[:255],
        "scopes": " ".join(scopes.split())[:1000],
        "expires_at": expiry_from(response),
        "status": IntegrationStatus.CONNECTED,
        "last_error": "",
        "refresh_lease_until": None,
        "reconnect_notified_at": None,
    }
    if connect_link is not None:
        fields |= {"notify_chat_id": connect_link.chat_id, "notify_identity": connect_link.identity}
    IntegrationAccount.objects.filter(pk=social.pk).update(**fields)
    if connect_link is None:
        return None
    strategy.session_pop(SESSION_LINK)
    if not connect_link_complete(link_id=connect_link.pk, account_id=social.pk):
        raise ConnectLinkSpent(backend)
    _announce(connect_link, provider.label, fields["login"] or social.uid, social.pk)
    context = {"provider": provider.label, "login": fields["login"] or social.uid}
    return render(strategy.request, "integrations/connected.html", context)


def _announce(link: ConnectLink, label: str, login: str, account_id: int) -> None:
    chat = link.chat
    events_record(
        [
            PendingEvent(
                kind="integration.connected",
                summary=f"{label} connected as {login} for {link.identity}",
                data={"provider": link.provider, "account_id": account_id, "login": login},
            )
        ],
        transport=chat.transport if chat else "",
        chat_id=chat.pk if chat else None,
    )
    if chat is not None and chat.transport in ("telegram", "web"):
        outbox_enqueue(
            transport=chat.transport,
            chat_pk=chat.pk,
            text=f"{label} connected as {login}.",
            idempotency_key=f"integration:connected:{link.pk}",
        )
