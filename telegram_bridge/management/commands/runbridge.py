"""``python manage.py runbridge``: run the Telegram bridge for one signed-in account.

Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 2 when no session is configured, 3 when
Telegram has revoked the session (sign in again with ``telegram_login``), 4 when another bridge
runs the same account (exactly one may: ``telegram_bridge.lease``). With ``--wait`` (what
``make run`` uses) it instead waits, idle, until a session is signed in, after a revocation for
a new sign-in, and while another bridge runs the account for that one to stop, so the rest of
the system keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aisystem.models import TelegramSession
from telegram_bridge.bridge import EXIT_BUSY, EXIT_REVOKED, TelegramBridge
from telegram_bridge.config import BridgeConfig
from telegram_bridge.sessions import client_for_session
from telegram_bridge.shutdown import ShutdownController

logger = logging.getLogger(__name__)
POLL_SECONDS = 10.0


class Command(BaseCommand):
    help = "Run the Telegram bridge (sign in first with telegram_login)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--session", help="TelegramSession name (TELEGRAM_SESSION).")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait for a signed-in session instead of exiting without one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = BridgeConfig.from_settings()
        name = options["session"] or config.session
        code = asyncio.run(_main(name, config, wait=options["wait"]))
        if code == 2:
            raise CommandError(
                f"No enabled Telegram session '{name}'. Sign in first: "
                "python manage.py telegram_login",
                returncode=2,
            )
        if code == EXIT_BUSY:
            raise CommandError(
                f"Another bridge runs Telegram session '{name}', and exactly one may run per "
                "account. Stop it first, or start this one with --wait to take over when it "
                "stops.",
                returncode=EXIT_BUSY,
            )
        if code == EXIT_REVOKED:
            raise CommandError(
                f"Telegram revoked session '{name}'. Sign in again: "
                "python manage.py telegram_login",
                returncode=EXIT_REVOKED,
            )


async def _main(name: str, config: BridgeConfig, *, wait: bool) -> int:
    revoked: str | None = None  # fingerprint of a session Telegram refused
    announced = busy_announced = False
    while True:
        session = await sync_to_async(_enabled_session)(name)
        if session is not None and _fingerprint(session) != revoked:
            bridge = TelegramBridge(
                session=session, client=client_for_session(session, config), config=config
            )
            code = await bridge.run()
            if code == EXIT_BUSY and wait:
                if not busy_announced:
                    logger.warning(
                        "another bridge runs Telegram session '%s': waiting for it to stop", name
                    )
                    busy_announced = True
                if await _idle(POLL_SECONDS):
                    return 0
                continue
            if code != EXIT_REVOKED or not wait:
                return code
            revoked = _fingerprint(session)  # wait for a new sign-in
        elif not wait:
            return 2
        if not announced:
            logger.warning(
                "no usable Telegram session '%s': waiting for python manage.py telegram_login",
                name,
            )
            announced = True
        if await _idle(POLL_SECONDS):
            return 0


def _fingerprint(session: TelegramSession) -> str:
    return hashlib.sha256(session.session_string.encode()).hexdigest()


def _enabled_session(name: str) -> TelegramSession | None:
    return TelegramSession.objects.filter(name=name, is_enabled=True).first()


async def _idle(seconds: float) -> bool:
    """Wait ``seconds``, or until SIGTERM/SIGINT; True if a stop was requested."""
    shutdown = ShutdownController()
    shutdown.install()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.stopping.wait(), timeout=seconds)
        return shutdown.stopping.is_set()
    finally:
        shutdown.restore()
