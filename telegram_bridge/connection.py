"""Connecting a bridge's client to Telegram, and what it announces once connected.

``client_connect`` retries network failures with exponential backoff (``BridgeConfig``: 1 s
doubling, roughly, up to 60 s) until it
is connected or a stop is requested, and turns Telegram's refusal of the session (revoked,
signed out elsewhere) into ``SessionRevoked``: that one is never retried, because retrying a
dead authorization key only earns FloodWaits. ``bot_commands_register`` gives Telegram the
bot's command menu.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from pyrogram import Client, errors, types
from pyrogram.errors.rpc_error import RPCError

from pipeline.commands import COMMANDS

logger = logging.getLogger(__name__)

_REVOKED = (errors.Unauthorized,)


class SessionRevoked(Exception):
    """Telegram refused the stored session: sign in again with ``telegram_login``."""


async def client_connect(
    client: Client,
    session_name: str,
    *,
    stopping: asyncio.Event,
    on_failure: Callable[[], Awaitable[None]],
    backoff: Sequence[float],
) -> bool:
    """Start ``client``; False if ``stopping`` was set first. After a failed attempt
    ``on_failure`` runs (the bridge records "disconnected") and the next waits ``backoff[n]``
    seconds (the last value repeats). Raises SessionRevoked."""
    attempt = 0
    while True:
        try:
            await client.start()
            return True
        except _REVOKED as error:
            raise SessionRevoked(
                f"Telegram refused session '{session_name}' ({error.ID}): sign in again with "
                "python manage.py telegram_login."
            ) from None
        except (OSError, TimeoutError, errors.InternalServerError) as error:
            delay = backoff[min(attempt, len(backoff) - 1)]
            attempt += 1
            logger.warning("connecting failed (%s); retrying in %g s", error, delay)
            await on_failure()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            if stopping.is_set():
                return False


async def bot_commands_register(client: Client) -> None:
    """The pipeline's commands as the bot's menu (``/help`` lists the same ones)."""
    commands = [
        types.BotCommand(name, description[:256])
        for name, description in COMMANDS.items()
        if name.isalnum()
    ]
    try:
        await client.set_bot_commands(commands)
    except RPCError as error:
        logger.warning("registering the bot commands failed: %s", error.ID)
