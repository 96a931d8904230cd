"""What a reply cost, from the usage Claude reports and a price per model (settings)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

PricePair = tuple[Decimal, Decimal]  # USD per million tokens: (input, output)
_MILLION = Decimal(1_000_000)
_CENT_FRACTION = Decimal("0.000001")


def price_for(model: str, prices: Mapping[str, PricePair]) -> PricePair:
    """The exact model, else the longest configured prefix ("claude-sonnet-4-5-20250929"
    is priced as "claude-sonnet-4-5"), else "default"."""
    if model in prices:
        return prices[model]
    prefixes = [name for name in prices if name != "default" and model.startswith(name)]
    if prefixes:
        return prices[max(prefixes, key=len)]
    return prices.get("default", (Decimal(0), Decimal(0)))


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, PricePair]
) -> Decimal:
    price_in, price_out = price_for(model, prices)
    cost = (price_in * input_tokens + price_out * output_tokens) / _MILLION
    return cost.quantize(_CENT_FRACTION)
