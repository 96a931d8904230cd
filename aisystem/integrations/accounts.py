"""A person's connected accounts: who owns them, listing them, disconnecting them.

An account belongs to a Django user. A browser-chat identity has one already; a Telegram or
REST identity gets one the first time it connects something (``identity_user_ensure``): a
user without a usable password, so connecting an account never opens a way to sign in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from aisystem.errors import IntegrationError
from aisystem.integrations.registry import PROVIDERS
from aisystem.models import Identity, IntegrationAccount

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DisconnectOutcome:
    revoked: bool  # the provider confirmed the grant is gone
    detail: str  # why not, when it did not


def accounts_of_identity(identity_id: int) -> list[IntegrationAccount]:
    """The accounts of the identity's Django user ([] when it has none), by provider."""
    user_id = Identity.objects.filter(pk=identity_id).values_list("user_id", flat=True).first()
    if user_id is None:
        return []
    return list(IntegrationAccount.objects.filter(user_id=user_id).order_by("provider", "pk"))


def account_of_identity(identity_id: int, provider: str) -> IntegrationAccount | None:
    """The identity's account at ``provider`` (the newest, should there be several)."""
    accounts = [a for a in accounts_of_identity(identity_id) if a.provider == provider]
    return accounts[-1] if accounts else None


def account_disconnect(*, account_id: int) -> DisconnectOutcome:
    """Revoke the grant at the provider, then delete the account here. It is deleted even
    when the provider cannot be reached (the person asked to stop its use here); the
    outcome says so, and staff can see the failed call in the external-call log."""
    account = IntegrationAccount.objects.filter(pk=account_id).first()
    if account is None:
        return DisconnectOutcome(revoked=False, detail="it was not connected")
    provider = PROVIDERS.get(account.provider)
    outcome = DisconnectOutcome(revoked=True, detail="")
    if provider is None or not provider.is_configured():
        outcome = DisconnectOutcome(revoked=False, detail="the provider is not configured here")
    else:
        try:
            provider.revoke(dict(account.extra_data))
        except IntegrationError as error:
            logger.warning("revoking %s account %s failed: %s", account.provider, account.pk, error)
            outcome = DisconnectOutcome(revoked=False, detail=error.details)
    IntegrationAccount.objects.filter(pk=account_id).delete()
    return outcome


def identity_user_ensure(identity: Identity) -> AbstractBaseUser:
    """The identity's Django user, created without a usable password if it has none."""
    User = get_user_model()
    if identity.user_id is not None:
        return User.objects.get(pk=identity.user_id)
    with transaction.atomic():
        locked = Identity.objects.select_for_update().get(pk=identity.pk)
        if locked.user_id is not None:
            identity.user_id = locked.user_id
            return User.objects.get(pk=locked.user_id)
        # A fresh user, never an existing one that happens to have the name.
        base = f"{identity.transport}-{identity.external_id}"[:140]
        username, suffix = base, 1
        while User.objects.filter(username=username).exists():
            suffix += 1
            username = f"{base}-{suffix}"
        user = User.objects.create_user(username=username, password=None)
        user.first_name = (identity.display_name or "")[:150]
        user.save(update_fields=["first_name"])
        Identity.objects.filter(pk=identity.pk).update(user=user)
        identity.user_id = user.pk
    return user
