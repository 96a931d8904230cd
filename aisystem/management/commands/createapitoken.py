from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aisystem.models import ApiToken
from aisystem.services.tokens import api_token_create


class Command(BaseCommand):
    help = (
        "Create a REST API token allowed by a new access rule. The token is printed on the "
        "last line, once: only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A unique name for the token.")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        if ApiToken.objects.filter(name=name).exists():
            raise CommandError(f"A token named {name!r} exists already; choose another name.")
        token, plaintext = api_token_create(name=name)
        self.stderr.write(f"Created API token {token.name!r}, allowed by an access rule.")
        self.stdout.write(plaintext)
