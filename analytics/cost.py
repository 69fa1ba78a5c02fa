"""Cost of LLM spans: each token class priced once, at its own rate (DESIGN.md decision 9). Pure.

Providers count tokens differently, and pricing them as if they did not is how observability
tools get cost wrong (double-charging cached input, or charging cache reads at the input rate):

* ``cached_in_input`` (OpenAI, Google, Mistral): ``input_tokens`` already includes the cached
  tokens. Charge ``input - cached - cache_write`` at the input rate, ``cached`` at the cached rate.
* ``cache_separate`` (Anthropic, also through Bedrock/Vertex): ``input_tokens`` are only the
  uncached tokens; cache reads and cache writes are reported beside them. Charge ``input`` at the
  input rate, cache reads at the cached rate, cache writes at the cache-write rate.

The convention comes from the price row's ``accounting`` column, else from the model's vendor
(the price row's provider: ``anthropic`` → ``cache_separate``, any other → ``cached_in_input``).
If a span's numbers cannot be ``cached_in_input`` (cache reads + writes exceed input), they are
priced as ``cache_separate``: the data proves the instrumentation reported them apart.

Reasoning tokens are counted inside output tokens by every provider we price (OpenAI
``output_tokens_details.reasoning_tokens``; Anthropic and Gemini thinking tokens are billed as
output). They are charged once: ``output - reasoning`` at the output rate plus ``reasoning`` at the
reasoning rate (the output rate when the table has none). If reasoning exceeds output, the
instrumentation reported them apart, and both are charged in full.

A span whose model has no price gets NULL cost, never $0 (``cost_status = 'unpriced'``); a priced
span with no token counts at all (a failed call) gets NULL too (``'no_usage'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.pricing import Price, PriceTable

PER_TOKEN = 1e-6  # prices are USD per 1M tokens
TOKEN_COLUMNS = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
COST_COLUMNS = (
    "input_cost_usd", "cached_cost_usd", "cache_write_cost_usd", "output_cost_usd", "reasoning_cost_usd",
    "cost_usd",
)  # fmt: skip


def accounting_for(price: Price) -> str:
    """Which token accounting the model's usage numbers follow."""
    if price.accounting:
        return price.accounting
    return "cache_separate" if price.provider == "anthropic" else "cached_in_input"


@dataclass(frozen=True, slots=True)
class Cost:
    """One span's cost by token class, in USD."""

    input: float
    cached: float
    cache_write: float
    output: float
    reasoning: float
    accounting: str

    @property
    def total(self) -> float:
        return self.input + self.cached + self.cache_write + self.output + self.reasoning


def _price_arrays(prices: list[Price | None]) -> dict[str, np.ndarray]:
    """Per-row rates (USD per token); unset cached/write rates fall back to the input rate and an
    unset reasoning rate to the output rate: with no discount known, the full rate is charged."""
    nan = float("nan")
    cols: dict[str, list[float]] = {
        k: [] for k in ("input", "cached", "write", "output", "reasoning", "separate")
    }
    for p in prices:
        if p is None:
            for values in cols.values():
                values.append(nan)
            continue
        cols["input"].append(p.input)
        cols["cached"].append(p.input if p.cached_input is None else p.cached_input)
        cols["write"].append(p.input if p.cache_write is None else p.cache_write)
        cols["output"].append(p.output)
        cols["reasoning"].append(p.output if p.reasoning is None else p.reasoning)
        cols["separate"].append(1.0 if accounting_for(p) == "cache_separate" else 0.0)
    return {k: np.asarray(v, dtype="float64") for k, v in cols.items()}


def _token_costs(
    tokens: dict[str, np.ndarray], rates: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The pricing rule, vectorized; token arrays have 0 for absent counts."""
    inp, cached, write = (
        tokens["input_tokens"],
        tokens["cached_tokens"],
        tokens["cache_write_tokens"],
    )
    out, reasoning = tokens["output_tokens"], tokens["reasoning_tokens"]
    separate = (rates["separate"] == 1.0) | (cached + write > inp)
    uncached = np.where(separate, inp, inp - cached - write)
    plain_output = np.where(reasoning <= out, out - reasoning, out)
    parts = {
        "input_cost_usd": uncached * rates["input"],
        "cached_cost_usd": cached * rates["cached"],
        "cache_write_cost_usd": write * rates["write"],
        "output_cost_usd": plain_output * rates["output"],
        "reasoning_cost_usd": reasoning * rates["reasoning"],
    }
    parts = {k: v * PER_TOKEN for k, v in parts.items()}
    parts["cost_usd"] = sum(parts.values())  # type: ignore[assignment]
    parts["separate"] = separate
    return parts


def span_cost(
    price: Price,
    *,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    output_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Cost:
    """The cost of one call at ``price`` (the same rule compute_costs applies to a frame)."""
    tokens = {
        "input_tokens": input_tokens, "cached_tokens": cached_tokens, "cache_write_tokens": cache_write_tokens,
        "output_tokens": output_tokens, "reasoning_tokens": reasoning_tokens,
    }  # fmt: skip
    parts = _token_costs(
        {k: np.asarray([float(v)]) for k, v in tokens.items()}, _price_arrays([price])
    )
    return Cost(
        input=float(parts["input_cost_usd"][0]),
        cached=float(parts["cached_cost_usd"][0]),
        cache_write=float(parts["cache_write_cost_usd"][0]),
        output=float(parts["output_cost_usd"][0]),
        reasoning=float(parts["reasoning_cost_usd"][0]),
        accounting="cache_separate" if parts["separate"][0] else "cached_in_input",
    )


def compute_costs(spans: pd.DataFrame, prices: PriceTable) -> pd.DataFrame:
    """Cost columns for LLM spans.

    ``spans`` has ``model``, ``start_time`` and the token columns (NULL = not reported). Returns
    the same rows with ``price_model``, ``accounting``, ``cost_status`` and the cost columns.
    """
    out = spans.copy()
    n = len(out)
    if n == 0:
        for col in ("price_model", "accounting", "cost_status", *COST_COLUMNS):
            out[col] = pd.Series(dtype="float64" if col in COST_COLUMNS else "object")
        return out
    # Prices are looked up once per (model, day), then spread to the rows by index.
    days = pd.to_datetime(out["start_time"]).dt.normalize()
    models = out["model"].astype("object")
    codes, _ = pd.factorize(pd.MultiIndex.from_arrays([models.fillna(""), days]))
    first = pd.Series(np.arange(n)).groupby(codes).first().to_numpy()
    unique_prices = [
        prices.price_for(models.iloc[i], days.iloc[i].date())
        if isinstance(models.iloc[i], str)
        else None
        for i in first
    ]
    rates = {k: v[codes] for k, v in _price_arrays(unique_prices).items()}
    found = np.array([p is not None for p in unique_prices], dtype=bool)[codes]
    has_usage = out[list(TOKEN_COLUMNS)].notna().any(axis=1).to_numpy()
    tokens = {c: out[c].fillna(0).astype("float64").to_numpy() for c in TOKEN_COLUMNS}
    parts = _token_costs(tokens, rates)
    priced = found & has_usage
    for col in COST_COLUMNS:
        out[col] = np.where(priced, parts[col], np.nan)
    names = np.array([p.model if p is not None else None for p in unique_prices], dtype=object)
    out["price_model"] = names[codes]
    out["accounting"] = np.where(
        priced, np.where(parts["separate"], "cache_separate", "cached_in_input"), None
    )
    out["cost_status"] = np.where(found, np.where(has_usage, "priced", "no_usage"), "unpriced")
    return out
