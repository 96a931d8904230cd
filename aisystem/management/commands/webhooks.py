"""``manage.py webhooks add|list|remove``: outgoing webhook subscriptions from the shell.

``add`` prints the new ``whsec_…`` secret on its last line (and only there: it is stored
encrypted), so a script can read it with ``tail -n 1``. Mistakes (an unknown event type, a
URL that is not http(s) or points at a private address, a taken name) end with a one-line
error and exit code 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aisystem.event_catalog import PUBLIC_EVENT_TYPES
from aisystem.models import WebhookSubscription
from aisystem.webhooks.services import (
    WebhookConfigError,
    webhook_subscription_create,
    webhook_subscription_remove,
)


class Command(BaseCommand):
    help = "Add, list or remove outgoing webhook subscriptions (Standard Webhooks)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="add|list|remove")
        add = actions.add_parser("add", help="Subscribe a URL; prints its signing secret last.")
        add.add_argument("--name", required=True, help="A unique name.")
        add.add_argument("--url", required=True, help="The https:// URL that receives events.")
        add.add_argument(
            "--events",
            required=True,
            help="Comma-separated event types, of: " + ", ".join(PUBLIC_EVENT_TYPES),
        )
        actions.add_parser("list", help="Show every subscription.")
        remove = actions.add_parser("remove", help="Delete a subscription and its deliveries.")
        remove.add_argument("name")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            if action == "add":
                self._add(options["name"], options["url"], options["events"])
            elif action == "list":
                self._list()
            else:
                self._remove(options["name"])
        except WebhookConfigError as exc:
            raise CommandError(str(exc)) from None

    def _add(self, name: str, url: str, events: str) -> None:
        kinds = [kind for kind in events.split(",") if kind.strip()]
        if not kinds:
            raise CommandError("--events needs at least one event type.")
        subscription, secret = webhook_subscription_create(name=name, url=url, event_types=kinds)
        self.stderr.write(
            f"Added webhook {subscription.name!r} for {', '.join(subscription.event_types)}. "
            "Its signing secret follows; it is not shown again."
        )
        self.stdout.write(secret)

    def _list(self) -> None:
        subscriptions = WebhookSubscription.objects.defer("signing_secret", "previous_secret")
        for subscription in subscriptions.order_by("name"):
            if subscription.disabled_at:
                state = f"disabled {subscription.disabled_at:%Y-%m-%d %H:%M}"
            else:
                state = "active" if subscription.is_active else "inactive"
            kinds = ",".join(subscription.event_types) or "(all public types)"
            self.stdout.write(f"{subscription.name}\t{subscription.url}\t{kinds}\t{state}")

    def _remove(self, name: str) -> None:
        if not webhook_subscription_remove(name=name):
            raise CommandError(f"There is no webhook named {name!r}.")
        self.stderr.write(f"Removed webhook {name!r}.")
