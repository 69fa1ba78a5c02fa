"""Cost figures pinned against hand-computed values for each provider's token accounting.

Prices used (USD per 1M tokens, analytics/pricing.csv):
gpt-4.1: input 2.00, cached 0.50, output 8.00.
claude-sonnet-4.5: input 3.00, cache read 0.30, cache write 3.75, output 15.00.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from analytics.cost import compute_costs, span_cost
from analytics.pricing import load_prices

DAY = date(2025, 12, 1)
PRICES = load_prices()


def test_openai_cached_tokens_are_inside_input_and_charged_once() -> None:
    # 10,000 input of which 4,000 cached; 2,000 output of which 500 reasoning.
    # 6,000 × $2 + 4,000 × $0.50 + 2,000 × $8 = 12,000 + 2,000 + 16,000 = $0.030 (per 1M → /1e6).
    # Double-counting cached input (all 10,000 at $2 plus 4,000 at $0.50) would give $0.038.
    cost = span_cost(PRICES.price_for("gpt-4.1-2025-04-14", DAY), input_tokens=10_000, cached_tokens=4_000,
                     output_tokens=2_000, reasoning_tokens=500)  # fmt: skip
    assert cost.accounting == "cached_in_input"
    assert cost.input == pytest.approx(0.012)
    assert cost.cached == pytest.approx(0.002)
    assert cost.output + cost.reasoning == pytest.approx(
        0.016
    )  # reasoning is inside output: no extra charge
    assert cost.total == pytest.approx(0.030)


def test_anthropic_cache_reads_and_writes_are_beside_input() -> None:
    # input 50,000 (uncached only), cache read 10,000, cache write 2,000, output 1,000.
    # 50,000 × $3 + 10,000 × $0.30 + 2,000 × $3.75 + 1,000 × $15 = 150,000 + 3,000 + 7,500 + 15,000 = $0.1755.
    # Treating it the OpenAI way (subtracting cache from input) would give $0.1395.
    cost = span_cost(PRICES.price_for("claude-sonnet-4-5-20250929", DAY), input_tokens=50_000, cached_tokens=10_000,
                     cache_write_tokens=2_000, output_tokens=1_000)  # fmt: skip
    assert cost.accounting == "cache_separate"
    assert (cost.input, cost.cached, cost.cache_write, cost.output) == pytest.approx(
        (0.15, 0.003, 0.0075, 0.015)
    )
    assert cost.total == pytest.approx(0.1755)


def test_anthropic_mostly_cached_call() -> None:
    # input 1,000, cache read 8,000, cache write 2,000, output 500:
    # 1,000 × $3 + 8,000 × $0.30 + 2,000 × $3.75 + 500 × $15 = 3,000 + 2,400 + 7,500 + 7,500 = $0.0204.
    cost = span_cost(PRICES.price_for("claude-sonnet-4-5", DAY), input_tokens=1_000, cached_tokens=8_000,
                     cache_write_tokens=2_000, output_tokens=500)  # fmt: skip
    assert cost.total == pytest.approx(0.0204)


def test_cache_counts_larger_than_input_prove_separate_reporting() -> None:
    # An OpenAI-priced model whose instrumentation reported cached tokens beside input (4,000 > 1,000):
    # 1,000 × $2 + 4,000 × $0.50 + 100 × $8 = 2,000 + 2,000 + 800 = $0.0048, never a negative input charge.
    cost = span_cost(
        PRICES.price_for("gpt-4.1", DAY), input_tokens=1_000, cached_tokens=4_000, output_tokens=100
    )
    assert cost.accounting == "cache_separate"
    assert cost.total == pytest.approx(0.0048)


def test_separately_priced_reasoning(tmp_path: Path) -> None:
    user = tmp_path / "p.csv"
    user.write_text(
        "provider,model,pattern,input,cached_input,cache_write,output,reasoning,effective_from,accounting\n"
        "openai,r1,r1,1.00,,,4.00,10.00,2025-01-01,\n"
    )
    price = load_prices(user).price_for("r1", DAY)
    # 1,000 output of which 600 reasoning: 400 × $4 + 600 × $10 = 1,600 + 6,000 = $0.0076; input 1,000 × $1 = $0.001.
    assert span_cost(
        price, input_tokens=1_000, output_tokens=1_000, reasoning_tokens=600
    ).total == pytest.approx(0.0086)
    # Reasoning reported beside output (more than output): both charged in full: 100 × $4 + 600 × $10 = $0.0064.
    assert span_cost(price, output_tokens=100, reasoning_tokens=600).total == pytest.approx(0.0064)


def test_cached_tokens_without_a_cached_price_pay_the_input_rate() -> None:
    # gpt-4-turbo has no cached price: 1,000 input (500 cached) all at $10 = $0.01.
    cost = span_cost(PRICES.price_for("gpt-4-turbo", DAY), input_tokens=1_000, cached_tokens=500)
    assert cost.total == pytest.approx(0.01)


def _spans(rows: list[dict[str, object]]) -> pa.Table:
    base = {"trace_id": "t", "start_time": datetime(2025, 12, 1, 12), "input_tokens": None, "cached_tokens": None,
            "cache_write_tokens": None, "output_tokens": None, "reasoning_tokens": None}  # fmt: skip
    return pa.Table.from_pylist([{**base, "span_id": f"s{i}", **r} for i, r in enumerate(rows)])


def test_frame_costs_match_the_scalar_rule_and_unknown_models_are_null_not_zero() -> None:
    df = compute_costs(
        _spans([
            {"model": "gpt-4.1-2025-04-14", "input_tokens": 10_000, "cached_tokens": 4_000, "output_tokens": 2_000,
             "reasoning_tokens": 500},
            {"model": "claude-sonnet-4-5", "input_tokens": 50_000, "cached_tokens": 10_000,
             "cache_write_tokens": 2_000, "output_tokens": 1_000},
            {"model": "llama-3.3-70b", "input_tokens": 1_000, "output_tokens": 100},
            {"model": "gpt-4.1", "input_tokens": None},  # a failed call: no usage
            {"model": None, "input_tokens": 10},
        ]),
        PRICES,
    ).to_pydict()  # fmt: skip
    assert df["span_id"] == ["s0", "s1", "s2", "s3", "s4"]  # the rows keep their order
    assert df["cost_usd"][0] == pytest.approx(0.030)
    assert df["cost_usd"][1] == pytest.approx(0.1755)
    assert df["cost_usd"][2] is None and df["cost_status"][2] == "unpriced"
    assert df["cost_usd"][3] is None and df["cost_status"][3] == "no_usage"
    assert df["cost_usd"][4] is None and df["cost_status"][4] == "unpriced"
    assert df["accounting"][:2] == ["cached_in_input", "cache_separate"]
    assert df["price_model"][1] == "claude-sonnet-4.5"


def test_each_row_gets_the_price_in_force_on_its_day(tmp_path: Path) -> None:
    user = tmp_path / "p.csv"
    user.write_text(
        "provider,model,pattern,input,cached_input,cache_write,output,reasoning,effective_from,accounting\n"
        "openai,gpt-4.1,gpt-4\\.1,1.00,0.25,,4.00,,2025-12-02,\n"  # halved from Dec 2
    )
    spans = _spans(
        [
            {"model": "gpt-4.1", "input_tokens": 1_000_000},
            {
                "model": "gpt-4.1",
                "input_tokens": 1_000_000,
                "start_time": datetime(2025, 12, 2, 0, 1),
            },
            {
                "model": "gpt-4.1-2025-04-14",
                "input_tokens": 1_000_000,
                "start_time": datetime(2025, 12, 3),
            },
        ]
    )
    assert compute_costs(spans, load_prices(user))["cost_usd"].to_pylist() == pytest.approx(
        [2.0, 1.0, 1.0]
    )
