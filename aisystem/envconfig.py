"""Helpers that settings.py uses to read the environment.

Only ``aisystem/settings.py`` calls these; the rest of the code reads ``django.conf.settings``.
"""

from __future__ import annotations

import os
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
    path.parent.mkdir(parents=True, exist_ok=True)
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
