from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from aisystem.services.usage import usage_day, usage_rebuild


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{value!r} is not a date like 2026-01-31.") from error


class Command(BaseCommand):
    help = (
        "Recompute the daily usage rollup from the stored messages (idempotent): for an "
        "upgrade or a repair. By default yesterday and today. Days a workspace's retention "
        "has already partly purged are left as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="The first day, YYYY-MM-DD (default: yesterday).")
        parser.add_argument("--until", help="The last day, YYYY-MM-DD (default: today).")
        parser.add_argument(
            "--days", type=int, help="Instead of --since: this many days, ending --until."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        today = usage_day(timezone.now())
        until = _day(options["until"]) if options["until"] else today
        if options["days"] is not None:
            if options["since"]:
                raise CommandError("Give --since or --days, not both.")
            if options["days"] < 1:
                raise CommandError("--days must be 1 or more.")
            since = until - timedelta(days=options["days"] - 1)
        else:
            since = _day(options["since"]) if options["since"] else today - timedelta(days=1)
        if until < since:
            raise CommandError(f"--until ({until}) is before --since ({since}).")
        rebuilt = usage_rebuild(since=since, until=until)
        self.stdout.write(
            f"Recomputed {rebuilt.days} day(s) from {since} to {until}: {rebuilt.rows} row(s) "
            f"written, {rebuilt.skipped} workspace-day(s) left alone (retention had purged "
            "part of them)."
        )
