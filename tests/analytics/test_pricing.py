"""The price table: matching model names as they arrive, effective dates, user overrides, validation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from analytics.pricing import PriceFileError, load_prices, parse_prices

DAY = date(2025, 12, 1)
HEADER = "provider,model,pattern,input,cached_input,cache_write,output,reasoning,effective_from,accounting\n"


@pytest.mark.parametrize(
    "wire_name, priced_as",
    [
        ("gpt-4.1-2025-04-14", "gpt-4.1"),  # dated snapshot finds its model
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),  # most specific pattern wins
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4o", "gpt-4o"),  # routing prefix
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3.5-sonnet"),  # Bedrock id
        ("claude-opus-4-1-20250805", "claude-opus-4.1"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("mistral-large-latest", "mistral-large"),
        ("GPT-4O-2024-08-06", "gpt-4o"),
    ],
)
def test_wire_names_find_their_price(wire_name: str, priced_as: str) -> None:
    price = load_prices().price_for(wire_name, DAY)
    assert price is not None and price.model == priced_as


@pytest.mark.parametrize(
    "wire_name", ["gpt-4.5-preview", "llama-3.3-70b", "gpt-4.1-turbo-x", "", None]
)
def test_unknown_models_have_no_price(wire_name: str | None) -> None:
    """No near-miss fallback: `gpt-4` must not price `gpt-4.5-preview`."""
    assert load_prices().price_for(wire_name, DAY) is None


def test_every_provider_is_covered() -> None:
    providers = {p.provider for p in load_prices().prices}
    assert {"openai", "anthropic", "google", "mistral"} <= providers


def test_price_in_force_depends_on_the_date(tmp_path: Path) -> None:
    user = tmp_path / "prices.csv"
    user.write_text(HEADER + "openai,gpt-4.1,gpt-4\\.1,1.00,0.25,,4.00,,2026-01-01,\n")
    table = load_prices(user)
    assert table.price_for("gpt-4.1", date(2025, 12, 31)).input == 2.00
    assert table.price_for("gpt-4.1-2025-04-14", date(2026, 1, 2)).input == 1.00
    assert table.price_for("gpt-4.1", date(2020, 1, 1)) is None  # before any price


def test_user_file_overrides_and_adds_without_code(tmp_path: Path) -> None:
    user = tmp_path / "prices.csv"
    user.write_text(
        "# our negotiated prices\n"
        + HEADER
        + "openai,gpt-4o,gpt-4o,2.00,1.00,,8.00,,2024-05-13,\n"
        + "meta,llama-3.3-70b,llama-3\\.3-70b,0.60,,,0.60,,2024-12-06,\n"
    )
    table = load_prices(user)
    assert table.price_for("gpt-4o-2024-08-06", DAY).input == 2.00
    assert table.price_for("llama-3.3-70b", DAY).provider == "meta"
    assert table.fingerprint != load_prices().fingerprint


def test_each_bad_row_is_one_clear_line(tmp_path: Path) -> None:
    text = HEADER + (
        "openai,a,a,abc,,,1,,2025-01-01,\n"
        "openai,b,b(,1,,,1,,2025-01-01,\n"
        "openai,c,c,1,,,1,,yesterday,\n"
        "openai,d,d,1,,,,,2025-01-01,\n"
        "openai,e,e,-1,,,1,,2025-01-01,\n"
        "openai,f,f,1,,,1,,2025-01-01,weird\n"
        "openai,g,g,1,,,1,,2025-01-01,\n"
    )
    with pytest.raises(PriceFileError) as excinfo:
        parse_prices(text, "prices.csv")
    lines = str(excinfo.value).splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("prices.csv:2: input")
    assert "not a valid regex" in lines[1] and "prices.csv:3" in lines[1]
    assert "effective_from" in lines[2] and "output is required" in lines[3]
    assert ">= 0" in lines[4] and "accounting" in lines[5]


def test_unknown_columns_and_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="unknown column.*price_in"):
        parse_prices("provider,model,pattern,price_in,output,effective_from\n", "p.csv")
    with pytest.raises(PriceFileError, match="cannot read"):
        load_prices(tmp_path / "missing.csv")
