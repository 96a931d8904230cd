from __future__ import annotations

from django.db import transaction

from aisystem.models import AccessAction, AccessRule, Identity, RateLimitPolicy
from aisystem.services.access import access_rule_create, access_rules_move
from aisystem.services.rate_limits import rate_limit_reset


def identity_block(*, identity: Identity, reason: str = "") -> Identity:
    """Block: every message from this identity is ignored silently, whatever the rules say."""
    identity.is_blocked = True
    identity.blocked_reason = reason[:255]
    identity.save(update_fields=["is_blocked", "blocked_reason"])
    return identity


@transaction.atomic
def identity_allow(*, identity: Identity) -> Identity:
    """Unblock and make sure an allow rule for this identity sits at the top of the order."""
    identity.is_blocked = False
    identity.blocked_reason = ""
    identity.save(update_fields=["is_blocked", "blocked_reason"])
    existing = (
        AccessRule.objects.filter(identity=identity, action=AccessAction.ALLOW, enabled=True)
        .order_by("position", "id")
        .first()
    )
    if existing is not None:
        # It may sit below a deny rule that matches the identity: first match wins.
        access_rules_move(rules=[existing], to="top")
    else:
        access_rule_create(
            action=AccessAction.ALLOW,
            at="top",
            identity=identity,
            description=f"Allowed from the admin: {identity}",
        )
    return identity


def identities_rate_limit_reset(*, identities: list[Identity]) -> int:
    return rate_limit_reset(identities=identities)


def rate_limit_policies_reset(*, policies: list[RateLimitPolicy]) -> int:
    """Reset the counters of everyone each policy covers (role policies: all with that role)."""
    identities = [p.identity for p in policies if p.identity is not None]
    chats = [p.chat for p in policies if p.chat is not None]
    roles = [p.role for p in policies if p.role]
    if roles:
        identities += list(Identity.objects.filter(role__in=roles))
    return rate_limit_reset(identities=identities, chats=chats)
