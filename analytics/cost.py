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

The rule is one SQL statement (:data:`COSTS_SQL`) over the spans joined with their rates; only
the price lookup, once per (model, day), is Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

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
# Per-token rates of a price (NULL: no price): what COSTS_SQL reads beside each span's tokens.
RATES_SCHEMA = pa.schema([
    ("price_model", pa.string()), ("r_input", pa.float64()), ("r_cached", pa.float64()),
    ("r_write", pa.float64()), ("r_output", pa.float64()), ("r_reasoning", pa.float64()),
    ("r_separate", pa.bool_()),
])  # fmt: skip
_PER = f"CAST({PER_TOKEN!r} AS DOUBLE)"

# The pricing rule over ``_priced`` (token columns, NULL = not reported, beside RATES_SCHEMA's
# columns and a ``_pos``), in the order of operations of the numpy code it replaced: the stored
# costs are the same to the last bit. It returns only the columns it adds, in ``_pos`` order, and
# compute_costs puts them beside the input's columns: the sort then carries 10 columns, not every
# column of the spans (the run's peak RSS in compute_costs, private DuckDB included: +70 -> +54 MB
# for 30,000 LLM spans, +190 -> +99 MB for 200,000; bench/RESULTS.md, "Round 6").
COSTS_SQL = f"""
WITH t AS (
    SELECT *,
           CAST(coalesce(input_tokens, 0) AS DOUBLE) AS _in, CAST(coalesce(cached_tokens, 0) AS DOUBLE) AS _cached,
           CAST(coalesce(cache_write_tokens, 0) AS DOUBLE) AS _write,
           CAST(coalesce(output_tokens, 0) AS DOUBLE) AS _out,
           CAST(coalesce(reasoning_tokens, 0) AS DOUBLE) AS _reasoning,
           r_input IS NOT NULL AS _found,
           {" OR ".join(f"{c} IS NOT NULL" for c in TOKEN_COLUMNS)} AS _usage
    FROM _priced
), s AS (
    SELECT *, coalesce(r_separate OR _cached + _write > _in, false) AS _separate, _found AND _usage AS _priced
    FROM t
), c AS (
    SELECT *,
           CASE WHEN _separate THEN _in ELSE _in - _cached - _write END * r_input * {_PER} AS _c_in,
           _cached * r_cached * {_PER} AS _c_cached,
           _write * r_write * {_PER} AS _c_write,
           CASE WHEN _reasoning <= _out THEN _out - _reasoning ELSE _out END * r_output * {_PER} AS _c_out,
           _reasoning * r_reasoning * {_PER} AS _c_reasoning
    FROM s
)
SELECT price_model,
       CASE WHEN _priced THEN _c_in END AS input_cost_usd,
       CASE WHEN _priced THEN _c_cached END AS cached_cost_usd,
       CASE WHEN _priced THEN _c_write END AS cache_write_cost_usd,
       CASE WHEN _priced THEN _c_out END AS output_cost_usd,
       CASE WHEN _priced THEN _c_reasoning END AS reasoning_cost_usd,
       CASE WHEN _priced THEN _c_in + _c_cached + _c_write + _c_out + _c_reasoning END AS cost_usd,
       CASE WHEN _priced THEN CASE WHEN _separate THEN 'cache_separate' ELSE 'cached_in_input' END END
           AS accounting,
       CASE WHEN NOT _found THEN 'unpriced' WHEN _usage THEN 'priced' ELSE 'no_usage' END AS cost_status
FROM c ORDER BY _pos
"""


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


def _rates(p: Price) -> dict[str, Any]:
    """Per-token rates; unset cached/write rates fall back to the input rate and an unset
    reasoning rate to the output rate: with no discount known, the full rate is charged."""
    return {
        "price_model": p.model, "r_input": p.input, "r_cached": p.input if p.cached_input is None else p.cached_input,
        "r_write": p.input if p.cache_write is None else p.cache_write, "r_output": p.output,
        "r_reasoning": p.output if p.reasoning is None else p.reasoning,
        "r_separate": accounting_for(p) == "cache_separate",
    }  # fmt: skip


def _costs(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The columns COSTS_SQL adds, one row per ``_priced`` row in ``_pos`` order."""
    return con.sql(COSTS_SQL).to_arrow_table()


def span_cost(
    price: Price,
    *,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    output_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Cost:
    """The cost of one call at ``price`` (the same rule compute_costs applies to a table)."""
    tokens = {
        "input_tokens": input_tokens, "cached_tokens": cached_tokens, "cache_write_tokens": cache_write_tokens,
        "output_tokens": output_tokens, "reasoning_tokens": reasoning_tokens,
    }  # fmt: skip
    row = {"_pos": 0, **{k: int(v) for k, v in tokens.items()}, **_rates(price)}
    with duckdb.connect(":memory:") as con:  # private: pure, no store involved
        con.register("_priced", pa.Table.from_pylist([row]))
        (out,) = _costs(con).to_pylist()
    return Cost(
        input=out["input_cost_usd"],
        cached=out["cached_cost_usd"],
        cache_write=out["cache_write_cost_usd"],
        output=out["output_cost_usd"],
        reasoning=out["reasoning_cost_usd"],
        accounting=out["accounting"],
    )


def compute_costs(spans: pa.Table, prices: PriceTable) -> pa.Table:
    """Cost columns for LLM spans.

    ``spans`` has ``model``, ``start_time`` and the token columns (NULL = not reported). Returns
    the same rows, in order, with ``price_model``, ``accounting``, ``cost_status`` and the cost
    columns (NULL where unpriced).
    """
    with duckdb.connect(":memory:") as con:  # private: pure, no store involved
        con.register("_spans", spans.append_column("_pos", pa.array(range(spans.num_rows), pa.int64())))
        # Prices are looked up once per (model, day), then joined to the rows.
        keys = con.execute(
            "SELECT DISTINCT model, CAST(start_time AS DATE) FROM _spans WHERE model IS NOT NULL"
        ).fetchall()
        found = [(m, d, p) for m, d in keys if (p := prices.price_for(m, d)) is not None]
        con.register("_rates", pa.Table.from_pylist(
            [{"model": m, "day": d, **_rates(p)} for m, d, p in found],
            schema=pa.schema([("model", pa.string()), ("day", pa.date32()), *RATES_SCHEMA]),
        ))  # fmt: skip
        con.execute(
            f"CREATE TEMP VIEW _priced AS SELECT s._pos, {', '.join(f's.{c}' for c in TOKEN_COLUMNS)}, "
            "r.* EXCLUDE (model, day) FROM _spans s "
            "LEFT JOIN _rates r ON s.model = r.model AND CAST(s.start_time AS DATE) = r.day"
        )
        added = _costs(con)
    return pa.Table.from_arrays([*spans.columns, *added.columns], names=[*spans.column_names, *added.column_names])
