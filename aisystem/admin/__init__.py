"""The admin console: one module per sub-domain, registered on the custom site."""

from aisystem.admin import access, conversations, identities, integrations, delivery  # noqa: F401
