"""``python manage.py telegram_login``: sign in a Telegram account for the bridge.

A bot signs in with its token; a user account with its phone number, the login code Telegram
sends, and the 2FA password if it has one (Pyrogram asks for those interactively). The
exported session string is stored encrypted; nothing secret is printed.
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from pyrogram import Client
from pyrogram.errors.rpc_error import RPCError

from telegram_bridge.sessions import SignedInAccount, telegram_session_save


class Command(BaseCommand):
    help = "Sign in to Telegram (a bot token or a user account) and store the session."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="default", help="Session name (default).")
        parser.add_argument("--api-id", type=int, help="From https://my.telegram.org.")
        parser.add_argument("--api-hash", help="From https://my.telegram.org (else asked).")
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--bot-token", help="Sign in as this bot (else asked).")
        who.add_argument("--phone", help="Sign in as the user account with this number.")

    def handle(self, *args: Any, **options: Any) -> None:
        api_id = options["api_id"] or _ask_int("API id (from my.telegram.org): ")
        api_hash = options["api_hash"] or getpass.getpass("API hash (hidden): ").strip()
        if not api_hash:
            raise CommandError("An API hash is required (https://my.telegram.org).")
        bot_token, phone = options["bot_token"], options["phone"]
        if not bot_token and not phone:
            answer = input("Bot token, or the phone number of a user account: ").strip()
            bot_token, phone = (answer, None) if ":" in answer else (None, answer)
        client = Client(
            name=f"login-{options['name']}",
            api_id=api_id,
            api_hash=api_hash,
            in_memory=True,
            bot_token=bot_token or None,
            phone_number=phone or None,
            no_updates=True,
        )
        try:
            session_string, account = asyncio.run(_sign_in(client))
        except RPCError as error:
            raise CommandError(f"Telegram refused the sign-in: {error.MESSAGE}") from None
        session = telegram_session_save(
            name=options["name"],
            api_id=api_id,
            api_hash=api_hash,
            session_string=session_string,
            account=account,
        )
        who = f"@{account.username}" if account.username else str(account.user_id)
        self.stdout.write(
            self.style.SUCCESS(f"Signed in as {who}; session '{session.name}' stored encrypted.")
        )
        self.stdout.write("Start the bridge with: python manage.py runbridge")


async def _sign_in(client: Client) -> tuple[str, SignedInAccount]:
    async with client:
        session_string = await client.export_session_string()
        me = client.me
        assert me is not None
        return session_string, SignedInAccount(
            user_id=me.id, username=me.username or "", is_bot=bool(me.is_bot)
        )


def _ask_int(prompt: str) -> int:
    raw = input(prompt).strip()
    if not raw.isdigit():
        raise CommandError("The API id is a number (https://my.telegram.org).")
    return int(raw)
