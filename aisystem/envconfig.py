"""Helpers that settings.py uses to read the environment.

Only ``aisystem/settings.py`` calls these; the rest of the code reads ``django.conf.settings``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import stat
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean; unknown spellings stop start-up instead of guessing."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma list of addresses and CIDR blocks (``10.0.0.5,192.168.0.0/16,::1``); a bare
    address is a block of one. A typo stops start-up, naming the setting and the entry."""
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an IP address or CIDR block (e.g. 10.0.0.0/8)."
            ) from None
    return tuple(networks)


def private_directory(path: Path) -> None:
    """Make ``path`` (and missing parents) and leave it 0700, whatever the umask: the data
    directory holds every conversation and the generated keys. A directory this process does
    not own keeps its mode (``aisystem.W002`` says so)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        if stat.S_IMODE(path.stat().st_mode) != 0o700:
            path.chmod(0o700)


def private_file(path: Path, *, create: bool = True) -> None:
    """Leave ``path`` 0600, whatever the umask, making it empty first if it is missing and
    ``create`` is set. SQLite gives the ``-wal`` and ``-shm`` files it makes the mode of the
    database file, so a database made here keeps them private too."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            path.chmod(0o600)


def local_secret(path: Path, generate: Callable[[], str]) -> str:
    """Return the secret kept in ``path``, creating it (mode 0600) on first use.

    Used for the embedded default only: a generated value survives restarts, so sessions
    and encrypted rows stay readable, and it never enters git (``var/`` is ignored).
    """
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value
    private_directory(path.parent)
    value = generate()
    # O_EXCL: if two processes start at once, the loser reads the winner's value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def parse_model_prices(
    raw: str, defaults: dict[str, tuple[str, str]]
) -> dict[str, tuple[Decimal, Decimal]]:
    """``"model=in/out,model=in/out"`` (USD per million tokens) merged over ``defaults``."""
    prices = {model: (Decimal(i), Decimal(o)) for model, (i, o) in defaults.items()}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        model, _, pair = item.partition("=")
        price_in, _, price_out = pair.partition("/")
        try:
            prices[model.strip()] = (Decimal(price_in), Decimal(price_out))
        except InvalidOperation:
            raise ImproperlyConfigured(
                f"AISYSTEM_MODEL_PRICES: {item!r} is not model=input/output (USD per million)."
            ) from None
        if not model.strip() or min(prices[model.strip()]) < 0:
            raise ImproperlyConfigured(f"AISYSTEM_MODEL_PRICES: {item!r} is not valid.")
    return prices
