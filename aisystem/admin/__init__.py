"""The admin console: one module per sub-domain, registered on the custom site."""

from aisystem.admin import (  # noqa: F401
    access,
    alerts,
    connections,
    conversations,
    delivery,
    identities,
    integrations,
    queue,
    webhooks,
)
