"""The admin console: one module per sub-domain, registered on the custom site."""

from aisystem.admin import access, conversations, delivery, identities, integrations  # noqa: F401
