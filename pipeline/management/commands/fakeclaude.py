"""``python manage.py fakeclaude``: the fake Messages API as a dev server for demos and benches."""

from __future__ import annotations

import dataclasses
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipeline.fakeclaude import PRESETS, SCENARIO_HEADER, FakeClaude


class Command(BaseCommand):
    help = (
        "Serve a fake Anthropic Messages API (JSON and SSE) until SIGINT/SIGTERM. Point the "
        "SDK at the printed URL with base_url / ANTHROPIC_BASE_URL. "
        f"Per request, the header '{SCENARIO_HEADER}: NAME' picks one of: "
        + ", ".join(sorted(PRESETS))
        + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (127.0.0.1).")
        parser.add_argument(
            "--port", type=int, default=8765, help="Port to bind (8765); 0 picks a free one."
        )
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            metavar="KEY",
            help="Accept only this key (repeatable). Without it any non-empty key is accepted.",
        )
        parser.add_argument(
            "--scenario",
            default="echo",
            choices=sorted(PRESETS),
            help="Scenario for requests that name none (echo).",
        )
        parser.add_argument(
            "--ttft", type=float, default=None, help="Seconds before the first token."
        )
        parser.add_argument("--tps", type=float, default=None, help="Output tokens per second.")
        parser.add_argument("--reply", default=None, help="Fixed reply text instead of the echo.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535.")
        default = PRESETS[options["scenario"]]
        overrides: dict[str, Any] = {}
        if options["ttft"] is not None:
            overrides["time_to_first_token"] = max(0.0, options["ttft"])
        if options["tps"] is not None:
            overrides["tokens_per_second"] = options["tps"] if options["tps"] > 0 else None
        if options["reply"] is not None:
            overrides["reply_text"] = options["reply"]
        fake = FakeClaude(
            host=options["host"],
            port=options["port"],
            api_keys=options["api_keys"],
            default=dataclasses.replace(default, **overrides),
        )
        try:
            fake.start()
        except OSError as error:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {error}"
            ) from error
        self.stdout.write(f"Fake Claude Messages API listening on {fake.base_url}")
        self.stdout.write("Stop it with Ctrl-C (SIGINT) or SIGTERM.")
        self.stdout.flush()
        serve_until_signalled(fake)
        self.stdout.write("Fake Claude stopped.")


def serve_until_signalled(fake: FakeClaude) -> None:
    """Block until SIGINT or SIGTERM, then stop ``fake`` (previous handlers are restored)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # A timed wait keeps the main thread returning to the interpreter to run the handler.
        while not stop.wait(0.2):
            pass
    finally:
        fake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
