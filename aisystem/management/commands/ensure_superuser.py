from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from aisystem.services.accounts import superuser_ensure


class Command(BaseCommand):
    help = (
        "Make sure a superuser exists: from DJANGO_SUPERUSER_USERNAME/EMAIL/PASSWORD, or "
        "'admin' with a generated password printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = superuser_ensure(
            username=os.environ.get("DJANGO_SUPERUSER_USERNAME"),
            email=os.environ.get("DJANGO_SUPERUSER_EMAIL"),
            password=os.environ.get("DJANGO_SUPERUSER_PASSWORD"),
        )
        if not outcome.created:
            self.stdout.write(f"Superuser: {outcome.username} (exists)")
        elif outcome.generated_password:
            self.stdout.write(
                self.style.WARNING(
                    f"Created superuser {outcome.username!r} with password "
                    f"{outcome.generated_password}\n"
                    "This password is shown only now. Change it with: "
                    f"python manage.py changepassword {outcome.username}"
                )
            )
        else:
            self.stdout.write(f"Created superuser {outcome.username!r} from DJANGO_SUPERUSER_*.")
        if outcome.chat_rule is not None:
            self.stdout.write(
                f"Access rule {outcome.chat_rule} lets {outcome.username!r} use the browser chat "
                "at /chat/; everyone else is refused until you add rules in the admin."
            )
