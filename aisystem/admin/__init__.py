"""The admin console: one module per sub-domain, registered on the custom site."""

from aisystem.admin import (  # noqa: F401
    access,
    connections,
    conversations,
    delivery,
    identities,
    integrations,
    webhooks,
)
