"""DuckDB SQL (what the dashboard writes) → ClickHouse SQL, for a ClickHouse store's /api/sql.

sqlglot transpiles the syntax; the rewrites below fix what it leaves with another meaning on
ClickHouse, so a dashboard query returns the same values on either store:

* ``TIMESTAMP '…'`` literals keep their microseconds and mean UTC (``toDateTime64(…, 6, 'UTC')``),
  not a second-precision DateTime in the server's time zone.
* ``time_bucket(INTERVAL …, t)`` → ``toStartOfInterval(t, INTERVAL …)`` (same buckets for minute,
  hour and day widths: DuckDB's origin is a midnight).
* Aggregates over no rows are NULL on DuckDB and 0 / 1970-01-01 on ClickHouse: every aggregate
  but the counts gets the ``OrNull`` combinator.
* ``quantile_cont`` → ``quantileExactInclusive`` (the same interpolation), ``approx_quantile`` →
  ``quantile`` (an estimate on both sides; ClickHouse's is exact up to 8192 values).
* Struct literals ``{'b': x::SMALLINT, 'n': 1}`` → named tuples of the values' types (element
  access ``e.b`` keeps working).
* ``GROUPING SETS``: a column a set does not group by is NULL on DuckDB, its type's default on
  ClickHouse: such select items become ``if(grouping(k) = 1, NULL, k)``.
* A name that is both a column and a select alias is the column on DuckDB, the alias on
  ClickHouse: such columns are qualified with their source.
* Subqueries in FROM get an alias (ClickHouse's joins need one); CTEs move to the top.

What cannot be translated (``UNION ALL BY NAME``: ClickHouse matches union columns by position)
raises :class:`sqlglot.errors.UnsupportedError`: the dashboard's queries are written without it.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp, transforms
from sqlglot.errors import UnsupportedError
from sqlglot.optimizer.annotate_types import annotate_types

_TIMESTAMPS = {
    exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATETIME,
    exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMP_S, exp.DataType.Type.TIMESTAMP_MS,
}  # fmt: skip

# DuckDB aggregates whose ClickHouse form is ``<name>OrNull`` (NULL over no rows, as on DuckDB).
_OR_NULL = {
    exp.Sum: "sum", exp.Min: "min", exp.Max: "max", exp.Avg: "avg", exp.ArgMax: "argMax",
    exp.ArgMin: "argMin", exp.AnyValue: "any", exp.Stddev: "stddevSamp", exp.StddevSamp: "stddevSamp",
    exp.StddevPop: "stddevPop", exp.Variance: "varSamp", exp.VariancePop: "varPop",
}  # fmt: skip


def from_duckdb(sql: str) -> str:
    """The ClickHouse form of one DuckDB statement; sqlglot.errors.SqlglotError when it cannot be
    read or has no ClickHouse form."""
    # A WITH inside a subquery is DuckDB's (the agents page wraps one); sqlglot's ClickHouse
    # parser, which the sandbox checks the translation with, takes it only at the top.
    tree = transforms.move_ctes_to_top_level(sqlglot.parse_one(sql, read="duckdb"))
    for union in tree.find_all(exp.Union):
        if union.args.get("by_name"):
            raise UnsupportedError("UNION ... BY NAME has no ClickHouse form: list the columns in one order")
    for n, subquery in enumerate(list(tree.find_all(exp.Subquery))):
        if not subquery.alias and isinstance(subquery.parent, (exp.From, exp.Join)):
            subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"_q{n}")))
    ctes = {cte.alias: set(cte.this.named_selects) for cte in tree.find_all(exp.CTE) if isinstance(cte.this, exp.Query)}
    for select in list(tree.find_all(exp.Select)):
        _columns_over_aliases(select, ctes)
    tree = tree.transform(_rewrite)
    for select in tree.find_all(exp.Select):
        _null_rolled_up(select)
    return tree.sql(dialect="clickhouse")


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast) and _is_timestamp_literal(node):
        return exp.Anonymous(
            this="toDateTime64",
            expressions=[node.this, exp.Literal.number(6), exp.Literal.string("UTC")],
        )
    if isinstance(node, exp.DateBin):
        return exp.Anonymous(this="toStartOfInterval", expressions=[node.expression, _interval(node.this)])
    if isinstance(node, exp.Struct):
        return _named_tuple(node)
    if node.find_ancestor(exp.Window) is not None:
        return node
    counted = node.this if isinstance(node, exp.Filter) else node
    if isinstance(counted, exp.Count) and not isinstance(node.parent, exp.Filter):
        return exp.Anonymous(this="toInt64", expressions=[node.copy()])  # DuckDB's BIGINT, not UInt64
    if isinstance(node, exp.PercentileCont):
        return _parametric("quantileExactInclusiveOrNull", node.expression, node.this)
    if isinstance(node, exp.ApproxQuantile):
        return _parametric("quantileOrNull", node.args["quantile"], node.this)
    name = _OR_NULL.get(type(node))
    if name is not None and not isinstance(node.parent, exp.Window):
        args = [node.this, *([node.expression] if node.args.get("expression") else [])]
        return exp.Anonymous(this=f"{name}OrNull", expressions=args)
    return node


def _is_timestamp_literal(node: exp.Cast) -> bool:
    to = node.args.get("to")
    return (
        isinstance(node.this, exp.Literal) and node.this.is_string
        and isinstance(to, exp.DataType) and to.this in _TIMESTAMPS
    )  # fmt: skip


def _interval(node: exp.Expression) -> exp.Expression:
    """``INTERVAL '5 minutes'`` / ``INTERVAL 5 MINUTE`` → ClickHouse's ``INTERVAL 5 MINUTE``."""
    if not isinstance(node, exp.Interval):
        raise UnsupportedError(f"time_bucket needs an interval literal, got {node.sql('duckdb')}")
    amount, unit = node.this.name, node.unit.name if node.unit else ""
    if not unit:  # INTERVAL '5 minutes'
        amount, _, unit = amount.strip().partition(" ")
    unit = unit.strip().upper().rstrip("S") or "SECOND"
    return exp.Interval(this=exp.Literal.number(amount), unit=exp.Var(this=unit))


def _named_tuple(node: exp.Struct) -> exp.Expression:
    """``{'b': x::SMALLINT, 'n': 1}`` → ``CAST(tuple(x, 1) AS Tuple(b Int16, n Int32))``: the field
    types come from the values (a cast or a literal), as DuckDB types them."""
    fields, values = [], []
    for item in node.expressions:
        if not isinstance(item, (exp.PropertyEQ, exp.Slice, exp.EQ)):
            raise UnsupportedError(f"struct field without a name: {item.sql('duckdb')}")
        kind = annotate_types(item.expression.copy()).type
        if kind is None or kind.this == exp.DataType.Type.UNKNOWN:
            raise UnsupportedError(f"struct field {item.this.name} needs a typed value (a CAST): {item.expression.sql('duckdb')}")
        fields.append(f"{item.this.name} {kind.sql('duckdb')}")
        values.append(item.expression)
    struct = exp.DataType.build(f"STRUCT({', '.join(fields)})", dialect="duckdb")
    return exp.Cast(this=exp.Anonymous(this="tuple", expressions=values), to=struct)


def _parametric(name: str, level: exp.Expression, value: exp.Expression) -> exp.Expression:
    return exp.ParameterizedAgg(this=name, expressions=[level], params=[value])


def _columns_over_aliases(select: exp.Select, ctes: dict[str, set[str]]) -> None:
    """A name that is both a column and a select alias means the column on DuckDB everywhere but
    in ORDER BY, and the alias on ClickHouse: qualify such columns with the source that has them
    (the only one, or the one CTE or subquery whose columns include the name)."""
    # Only names an alias is defined from (``sum(cost_usd) AS cost_usd``): those are columns of
    # the source. A name that is only an alias (``failures / calls``) stays the alias on both.
    aliases = {
        item.alias for item in select.expressions
        if isinstance(item, exp.Alias) and any(c.name == item.alias for c in item.this.find_all(exp.Column))
    }  # fmt: skip
    if not aliases:
        return
    sources = [select.args.get("from_") or select.args.get("from"), *select.args.get("joins", [])]
    named = [s.this for s in sources if s is not None and isinstance(s.this, (exp.Table, exp.Subquery))]
    scopes = [*select.expressions, select.args.get("where"), select.args.get("group")]
    for scope in filter(None, scopes):
        for column in list(scope.find_all(exp.Column)):
            if column.table or column.name not in aliases or not _same_select(column, select):
                continue
            source = _source_of(column.name, named, ctes)
            if source is not None:
                column.set("table", exp.to_identifier(source))


def _source_of(name: str, sources: list[exp.Expression], ctes: dict[str, set[str]]) -> str | None:
    def columns(source: exp.Expression) -> set[str] | None:  # None: a table, columns unknown here
        if isinstance(source, exp.Subquery):
            return set(source.this.named_selects) if isinstance(source.this, exp.Query) else None
        return ctes.get(source.name) if isinstance(source, exp.Table) else None

    known = [s for s in sources if (columns(s) or set()) & {name}]
    unknown = [s for s in sources if columns(s) is None]
    found = known or unknown
    return found[0].alias_or_name if len(found) == 1 else None


def _same_select(node: exp.Expression, select: exp.Select) -> bool:
    return node.find_ancestor(exp.Select) is select


def _null_rolled_up(select: exp.Select) -> None:
    """Select items that are grouping keys of GROUPING SETS read NULL where a set rolls them up."""
    group = select.args.get("group")
    sets = [s for g in (group.expressions if group else []) if isinstance(g, exp.GroupingSets) for s in g.expressions]
    if not sets:
        return
    keys = {k.unnest().sql(dialect="clickhouse") for s in sets for k in (s.expressions if isinstance(s, exp.Tuple) else [s])}
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if inner.sql(dialect="clickhouse") in keys:
            nulled = exp.If(
                this=exp.EQ(this=exp.Anonymous(this="grouping", expressions=[inner.copy()]),
                            expression=exp.Literal.number(1)),
                true=exp.Null(),
                false=inner.copy(),
            )  # fmt: skip
            inner.replace(nulled)
