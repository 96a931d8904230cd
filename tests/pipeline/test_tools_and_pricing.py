"""The tools Claude may call, and what a reply costs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from pipeline.claude.pricing import PricePair, cost_usd, price_for
from pipeline.tools import (
    CURRENT_TIME,
    Tool,
    ToolFunction,
    ToolInputError,
    ToolRegistry,
    default_registry,
)
from pipeline.types import ToolSpec, ToolUseBlock


def tool(name: str, run: ToolFunction) -> Tool:
    return Tool(
        spec=ToolSpec(name=name, description=f"The {name} tool.", input_schema={"type": "object"}),
        run=run,
    )


def use(name: str, **arguments: object) -> ToolUseBlock:
    return ToolUseBlock(id="toolu_01", name=name, input=arguments)


async def echo(arguments: Mapping[str, object]) -> str:
    return f"echo: {arguments.get('text', '')}"


async def broken(arguments: Mapping[str, object]) -> str:
    raise RuntimeError("database password is hunter2")


async def picky(arguments: Mapping[str, object]) -> str:
    raise ToolInputError("Give a city name, not coordinates.")


# --- the registry ---------------------------------------------------------------------------


async def test_a_registered_tool_runs_and_its_text_goes_back_to_claude() -> None:
    registry = ToolRegistry([tool("echo", echo)])

    result, record = await registry.call(use("echo", text="hi"))

    assert result.tool_use_id == "toolu_01"
    assert result.content == "echo: hi"
    assert not result.is_error
    assert record.name == "echo"
    assert record.ok
    assert record.latency_ms >= 0


async def test_an_unknown_tool_comes_back_as_an_error_naming_it() -> None:
    registry = ToolRegistry([tool("echo", echo)])

    result, record = await registry.call(use("launch_rockets"))

    assert result.is_error
    assert result.content == "There is no tool named 'launch_rockets'."
    assert result.tool_use_id == "toolu_01"
    assert not record.ok


async def test_a_failing_tool_gives_a_short_error_without_its_details() -> None:
    registry = ToolRegistry([tool("lookup", broken)])

    result, record = await registry.call(use("lookup"))

    assert result.is_error
    assert result.content == "The tool failed (RuntimeError)."
    assert "hunter2" not in result.content
    assert not record.ok


async def test_a_tools_complaint_about_its_input_goes_back_to_claude_verbatim() -> None:
    registry = ToolRegistry([tool("weather", picky)])

    result, record = await registry.call(use("weather", city="48.85,2.35"))

    assert result.is_error
    assert result.content == "Give a city name, not coordinates."
    assert not record.ok


def test_a_second_tool_with_the_same_name_is_refused() -> None:
    registry = ToolRegistry([tool("echo", echo)])

    with pytest.raises(ValueError, match="'echo' is already registered"):
        registry.register(tool("echo", broken))


def test_registering_duplicates_up_front_is_refused_too() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ToolRegistry([tool("echo", echo), tool("echo", echo)])


def test_the_specs_list_the_tools_in_registration_order() -> None:
    registry = ToolRegistry([tool("b", echo), tool("a", echo)])

    assert [spec.name for spec in registry.specs()] == ["b", "a"]


def test_every_conversation_can_ask_for_the_current_time() -> None:
    assert [spec.name for spec in default_registry().specs()] == ["get_current_time"]


def test_default_registries_are_independent() -> None:
    first = default_registry()
    first.register(tool("echo", echo))

    assert [spec.name for spec in default_registry().specs()] == ["get_current_time"]


# --- the current time tool ------------------------------------------------------------------


def shown_time(content: str) -> datetime:
    return datetime.strptime(content.split(" (", 1)[0], "%A %d %B %Y, %H:%M:%S")


async def test_the_current_time_is_given_in_the_asked_time_zone() -> None:
    result, _ = await default_registry().call(use("get_current_time", timezone="Asia/Kolkata"))

    assert not result.is_error
    assert result.content.endswith("(Asia/Kolkata, UTC+0530)")
    now = datetime.now(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
    assert abs(shown_time(result.content) - now) < timedelta(minutes=5)


async def test_the_current_time_defaults_to_utc() -> None:
    shown = await CURRENT_TIME.run({})

    assert shown.endswith("(UTC, UTC+0000)")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime"])
async def test_an_unknown_time_zone_comes_back_as_an_error_asking_for_an_iana_name(
    zone: str,
) -> None:
    result, record = await default_registry().call(use("get_current_time", timezone=zone))

    assert result.is_error
    assert result.content == f"Unknown time zone {zone!r}; use an IANA name."
    assert not record.ok


# --- pricing --------------------------------------------------------------------------------

PRICES: dict[str, PricePair] = {
    "claude-sonnet-4": (Decimal(3), Decimal(15)),
    "claude-sonnet-4-5": (Decimal("3.5"), Decimal(16)),
    "claude-haiku-4-5": (Decimal(1), Decimal(5)),
    "default": (Decimal(10), Decimal(50)),
}


def test_a_model_priced_by_name_uses_its_own_price() -> None:
    assert price_for("claude-haiku-4-5", PRICES) == (Decimal(1), Decimal(5))


def test_a_dated_model_is_priced_by_its_longest_configured_prefix() -> None:
    assert price_for("claude-sonnet-4-5-20250929", PRICES) == (Decimal("3.5"), Decimal(16))
    assert price_for("claude-sonnet-4-20250514", PRICES) == (Decimal(3), Decimal(15))


def test_an_unknown_model_uses_the_default_price() -> None:
    assert price_for("claude-opus-9", PRICES) == (Decimal(10), Decimal(50))


def test_without_a_default_an_unknown_model_costs_nothing() -> None:
    assert price_for("claude-opus-9", {}) == (Decimal(0), Decimal(0))


def test_a_million_tokens_each_way_costs_the_two_prices_added() -> None:
    prices = {"default": (Decimal(3), Decimal(15))}

    assert cost_usd("claude-x", 1_000_000, 1_000_000, prices) == Decimal(18)


def test_a_cost_is_given_to_the_millionth_of_a_dollar() -> None:
    cost = cost_usd("claude-sonnet-4", 1234, 567, PRICES)

    assert cost == Decimal("0.012207")  # 0.003702 + 0.008505
    assert cost.as_tuple().exponent == -6


def test_a_fraction_below_a_millionth_is_rounded() -> None:
    prices = {"default": (Decimal("0.25"), Decimal(0))}

    assert cost_usd("m", 1, 0, prices) == Decimal("0.000000")
    assert cost_usd("m", 7, 0, prices) == Decimal("0.000002")  # 0.00000175


def test_a_reply_without_tokens_costs_nothing() -> None:
    assert cost_usd("claude-sonnet-4", 0, 0, PRICES) == Decimal(0)
