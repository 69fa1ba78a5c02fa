"""Pure DataFrame → Plotly figure functions; no Streamlit, no I/O, so they are easy to test.

The waterfall is one horizontal Bar trace fed with arrays (plus one scatter for error marks
and empty legend entries), never one trace per span: that is what keeps a 2,000-span trace
responsive in the browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import fmt

FONT = "Inter, -apple-system, Segoe UI, Roboto, sans-serif"
MONO = "JetBrains Mono, SFMono-Regular, Menlo, Consolas, DejaVu Sans Mono, monospace"
WATERFALL_ROW_PX = 22
WATERFALL_MAX_ROWS = 45  # rows visible at once; larger traces pan vertically
WATERFALL_LABELS_MAX = 300  # duration labels on bars up to this many spans


def _base(fig: go.Figure, height: int = 280, title: str | None = None) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=8, r=8, t=36 if title else 8, b=8),
        title=dict(text=title, font=dict(size=14), x=0, xanchor="left") if title else None,
        font=dict(family=FONT, size=12),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, title=None),
        hoverlabel=dict(font=dict(family=FONT)),
        bargap=0.15,
    )
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(gridcolor="#EEF2F7", zeroline=False)
    return fig


def empty(message: str, height: int = 220) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(color=fmt.MUTED, size=13))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base(fig, height)


# ---- span tree ---------------------------------------------------------------------------


def tree_order(spans: pd.DataFrame) -> pd.DataFrame:
    """Spans in depth-first order (children by start time) with a ``depth`` column.

    Spans whose parent is missing from the trace (not yet arrived, or cross-trace parenting)
    are treated as roots, so nothing is ever hidden.
    """
    if spans.empty:
        return spans.assign(depth=pd.Series(dtype=int))
    frame = spans.sort_values("start_time", kind="stable").reset_index(drop=True)
    ids = set(frame["span_id"])
    children: dict[str | None, list[int]] = {}
    for i, parent in enumerate(frame["parent_span_id"]):
        key = parent if isinstance(parent, str) and parent in ids else None
        children.setdefault(key, []).append(i)
    order: list[int] = []
    depths: list[int] = []
    stack = [(i, 0) for i in reversed(children.get(None, []))]
    seen: set[int] = set()
    while stack:
        i, depth = stack.pop()
        if i in seen:  # a cycle in bad data must not loop forever
            continue
        seen.add(i)
        order.append(i)
        depths.append(depth)
        for child in reversed(children.get(frame.at[i, "span_id"], [])):
            stack.append((child, depth + 1))
    rest = [i for i in range(len(frame)) if i not in seen]  # members of parent cycles
    order += rest
    depths += [0] * len(rest)
    result = frame.iloc[order].reset_index(drop=True)
    result["depth"] = depths
    return result


def _tree_labels(depths: pd.Series, names: pd.Series, width: int = 44) -> list[str]:
    """Indented names padded to one width: in a monospace font the right-aligned tick labels
    then read as a left-aligned tree."""
    raw = []
    for depth, name in zip(depths, names):
        depth = min(int(depth), 12)
        prefix = "\u00a0\u00a0" * max(depth - 1, 0) + ("└\u00a0" if depth else "")
        label = prefix + name
        raw.append(label if len(label) <= width else label[: width - 1] + "…")
    longest = max((len(label) for label in raw), default=0)
    return [label + "\u00a0" * (longest - len(label) + 1) for label in raw]


def waterfall(spans: pd.DataFrame, selected_span: str | None = None) -> go.Figure:
    """Every span as a bar from its start offset for its duration, indented by depth."""
    if spans.empty:
        return empty("This trace has no spans.")
    frame = spans if "depth" in spans and spans.index.equals(pd.RangeIndex(len(spans))) else tree_order(spans)
    t0 = frame["start_time"].min()
    offset = (frame["start_time"] - t0).dt.total_seconds().to_numpy() * 1000.0
    dur = frame["duration_ms"].astype(float).fillna(0).to_numpy()
    total = float(max((offset + dur).max(), 1e-3))
    width = np.maximum(dur, total * 0.003)  # sub-pixel spans stay visible and clickable
    n = len(frame)
    rows = np.arange(n)
    kinds = frame["kind"].astype(str)
    is_error = (frame["status"].astype(str) == "error").to_numpy()
    names = frame["name"].astype(str)
    labels = _tree_labels(frame["depth"], names)
    line_colors = np.where(is_error, fmt.ERROR_COLOR, "rgba(0,0,0,0)").astype(object)
    line_widths = np.where(is_error, 2.0, 0.0)
    if selected_span is not None:  # an outline, not per-bar opacity: that breaks click-to-select
        hit = (frame["span_id"] == selected_span).to_numpy()
        line_colors[hit] = "#0F172A"
        line_widths[hit] = 2.5
    custom = np.column_stack(
        [
            frame["span_id"].astype(str),
            names,
            kinds,
            [fmt.duration(d) for d in dur],
            frame["status"].astype(str),
            [fmt.duration(o) for o in offset],
        ]
    )
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=width,
            base=offset,
            y=rows,
            orientation="h",
            marker=dict(
                color=[fmt.kind_color(k) for k in kinds],
                line=dict(color=line_colors.tolist(), width=line_widths),
            ),
            customdata=custom,
            text=[fmt.duration(d) for d in dur] if n <= WATERFALL_LABELS_MAX else None,
            textposition="outside", cliponaxis=False, textfont=dict(size=10, color="#64748B"),
            hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]} · %{customdata[3]}"
            "<br>starts at +%{customdata[5]} · %{customdata[4]}<extra></extra>",
            showlegend=False,
            name="spans",
        )
    )
    if is_error.any():
        fig.add_trace(
            go.Scatter(
                x=(offset - total * 0.012)[is_error],  # left of the bar: the duration label is on the right
                y=rows[is_error],
                mode="markers",
                marker=dict(symbol="x-thin", size=9, line=dict(width=2, color=fmt.ERROR_COLOR)),
                name="error",
                hoverinfo="skip",
            )
        )
    for kind in dict.fromkeys(kinds):  # legend: one empty entry per kind present
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="markers", name=kind, hoverinfo="skip",
                       marker=dict(symbol="square", size=10, color=fmt.kind_color(kind)))
        )
    visible = min(n, WATERFALL_MAX_ROWS)
    height = visible * WATERFALL_ROW_PX + 90
    _base(fig, height)
    fig.update_layout(
        bargap=0.25, hovermode="closest", **({"dragmode": "pan"} if n > visible else {}),
        margin=dict(t=64), legend=dict(yref="container", y=1.0, yanchor="top", x=0, xanchor="left"),
    )
    fig.update_yaxes(
        tickmode="array", tickvals=rows, ticktext=labels, range=[visible - 0.5, -0.5],
        showgrid=False, tickfont=dict(size=11, family=MONO), automargin=True,
    )
    fig.update_xaxes(title=None, ticksuffix=" ms", showgrid=True, gridcolor="#EEF2F7", range=[0, total * (1.1 if n <= WATERFALL_LABELS_MAX else 1.02)],
                     side="top")
    return fig


# ---- time series -------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeAxis:
    """The selected window (None = all time) and the width of one time bucket."""

    start: datetime | None
    end: datetime | None
    bucket_ms: float


def _whole_ticks(fig: go.Figure, top: float) -> go.Figure:
    """Counts get whole-number ticks (no "0.2 failed requests")."""
    fig.update_yaxes(rangemode="tozero", tick0=0, dtick=max(1, math.ceil(float(top or 0) / 5)))
    return fig


def _over(fig: go.Figure, axis: TimeAxis | None) -> go.Figure:
    """Show the whole window, so a quiet hour looks quiet; bars span their bucket, not 1 ms."""
    if axis is not None:
        if axis.start is not None and axis.end is not None:
            fig.update_xaxes(range=[axis.start, axis.end])
        fig.update_traces(width=axis.bucket_ms * 0.9, offset=0, selector=dict(type="bar"))
    return fig



def traffic(series: pd.DataFrame, window: TimeAxis | None = None) -> go.Figure:
    if series.empty:
        return empty("No requests in this time range.")
    ok = series["requests"] - series["errors"]
    fig = go.Figure()
    fig.add_bar(x=series["bucket"], y=ok, name="ok", marker_color=fmt.OK_COLOR)
    fig.add_bar(x=series["bucket"], y=series["errors"], name="failed", marker_color=fmt.ERROR_COLOR)
    fig.update_layout(barmode="stack")
    _whole_ticks(fig, series["requests"].max())
    return _over(_base(fig, title="Requests"), window)


def errors(series: pd.DataFrame, window: TimeAxis | None = None) -> go.Figure:
    if series.empty:
        return empty("No requests in this time range.")
    rate = (series["errors"] / series["requests"].where(series["requests"] > 0) * 100).fillna(0)
    fig = go.Figure()
    fig.add_bar(x=series["bucket"], y=series["errors"], name="failed requests", marker_color=fmt.ERROR_COLOR,
                customdata=rate, hovertemplate="%{x}<br>%{y} failed (%{customdata:.1f}%)<extra></extra>")
    _whole_ticks(fig, series["errors"].max())
    return _over(_base(fig, title="Failed requests"), window)


def latency(series: pd.DataFrame, window: TimeAxis | None = None) -> go.Figure:
    if series.empty or series["avg_ms"].isna().all():
        return empty("No requests in this time range.")
    fig = go.Figure()
    fig.add_scatter(x=series["bucket"], y=series["avg_ms"], name="average", mode="lines+markers", marker=dict(size=4),
                    line=dict(color=fmt.ACCENT, width=2))
    fig.add_scatter(x=series["bucket"], y=series["p95_ms"], name="p95", mode="lines+markers", marker=dict(size=4),
                    line=dict(color="#F97316", width=2, dash="dash"))
    fig.update_yaxes(ticksuffix=" ms", rangemode="tozero")
    return _over(_base(fig, title="Response time"), window)


def cost(series: pd.DataFrame, window: TimeAxis | None = None) -> go.Figure:
    if series.empty:
        return empty("No priced spend in this time range yet.")
    fig = go.Figure()
    fig.add_bar(x=series["bucket"], y=series["cost_usd"], name="cost", marker_color="#0EA5E9")
    fig.update_yaxes(tickprefix="$", rangemode="tozero")
    return _over(_base(fig, title="Cost (USD)"), window)


# ---- breakdowns --------------------------------------------------------------------------


def hbar(frame: pd.DataFrame, label: str, value: str, *, title: str, money: bool = False,
         color: str = fmt.ACCENT, limit: int = 15) -> go.Figure:
    """Horizontal bars, largest on top (costs by model, agent, service)."""
    data = frame.dropna(subset=[value])
    data = data[data[value] > 0].nlargest(limit, value).iloc[::-1]
    if data.empty:
        return empty("Nothing to show yet.")
    text = [fmt.money(v) if money else fmt.count(v) for v in data[value]]
    fig = go.Figure(go.Bar(x=data[value], y=data[label].astype(str), orientation="h", text=text,
                           textposition="auto", marker_color=color, hovertemplate="%{y}: %{text}<extra></extra>"))
    if money:
        fig.update_xaxes(tickprefix="$")
    return _base(fig, height=max(180, 36 * len(data) + 60), title=title)


def cost_by_day(frame: pd.DataFrame) -> go.Figure:
    if frame.empty:
        return empty("No priced spend in this time range.")
    fig = go.Figure()
    for model, part in frame.groupby("model", sort=False):
        fig.add_bar(x=part["day"], y=part["cost_usd"], name=str(model))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(tickprefix="$")
    fig = _base(fig, height=300, title="Cost per day, by model")
    # One entry per model: beside the plot, not above it, where several rows would cover the title.
    return fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02))


def flow_layout(pairs: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Left-to-right layers: who starts a chain on the left, each handoff one step right;
    separate chains (workflows) stacked below each other. Cycles are cut at the first visit."""
    out: dict[str, list[str]] = {}
    incoming: set[str] = set()
    for source, target in pairs:
        out.setdefault(source, []).append(target)
        incoming.add(target)
    nodes = list(dict.fromkeys(n for pair in pairs for n in pair))
    pos: dict[str, tuple[float, float]] = {}
    row = 0
    for root in [n for n in nodes if n not in incoming] + nodes:
        if root in pos:
            continue
        used: dict[int, int] = {}  # layer → next free row in this chain
        queue = [(root, 0)]
        while queue:
            node, layer = queue.pop(0)
            if node in pos:
                continue
            y = max(used.get(layer, row), row)
            used[layer] = y + 1
            pos[node] = (float(layer), -float(y))
            queue += [(target, layer + 1) for target in out.get(node, [])]
        row = max(used.values())
    return pos


FAILING_HANDOFF_SHARE = 0.2  # an arrow turns red when at least this share of its runs failed


def handoff_graph(edges: pd.DataFrame) -> go.Figure:
    """Agents as a flow (left to right); one arrow per (from, to) with its count and failure rate."""
    if edges.empty:
        return empty("No handoffs in this time range.", height=320)
    pairs = [(str(s), str(t)) for s, t in zip(edges["source"], edges["target"])]
    pos = flow_layout(pairs)
    top = float(edges["count"].max())
    fig = go.Figure()
    for (source, target), row in zip(pairs, edges.itertuples(index=False)):
        (x0, y0), (x1, y1) = pos[source], pos[target]
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        # A→B and B→A run side by side: shift each directed edge to its own left.
        nx, ny = -(y1 - y0) / length * 0.07, (x1 - x0) / length * 0.07

        def at(t: float, push: float = 1.0) -> tuple[float, float]:
            return x0 + (x1 - x0) * t + nx * push, y0 + (y1 - y0) * t + ny * push  # noqa: B023

        failing = float(row.run_failure_rate or 0) >= FAILING_HANDOFF_SHARE
        (hx, hy), (tx, ty), (lx, ly) = at(0.82), at(0.18), at(0.5, 2.2)
        fig.add_annotation(
            x=hx, y=hy, ax=tx, ay=ty, xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3,
            arrowsize=1.0, arrowwidth=1 + 4 * float(row.count) / top,
            arrowcolor=fmt.ERROR_COLOR if failing else "#A5B4FC",
        )
        fig.add_annotation(
            x=lx, y=ly, showarrow=False, bgcolor="rgba(255,255,255,0.9)", font=dict(size=10, color="#334155"),
            text=f"{fmt.count(row.count)} · {fmt.percent(row.run_failure_rate, 1)} failed",  # 19.6%, not a blue "20%"
        )
    names = list(pos)
    fig.add_scatter(
        x=[pos[n][0] for n in names], y=[pos[n][1] for n in names], mode="markers+text", text=names,
        textposition="bottom center", marker=dict(size=26, color=fmt.kind_color("agent")), hoverinfo="text",
        showlegend=False, textfont=dict(size=13),
    )
    width = max(x for x, _ in pos.values())
    depth = -min(y for _, y in pos.values())
    fig.update_xaxes(visible=False, range=[-0.4, width + 0.4])
    fig.update_yaxes(visible=False, range=[-depth - 0.6, 0.5])
    return _base(fig, height=int(110 * (depth + 1) + 60))


def quick_chart(frame: pd.DataFrame, kind: str, x: str, y: str) -> go.Figure:
    """The SQL page's one-click chart: bar, line or scatter of two result columns."""
    data = frame[[x, y]].dropna()
    if data.empty:
        return empty("Nothing to plot.")
    if kind == "line":
        fig = go.Figure(go.Scatter(x=data[x], y=data[y], mode="lines+markers", line_color=fmt.ACCENT))
    elif kind == "scatter":
        fig = go.Figure(go.Scattergl(x=data[x], y=data[y], mode="markers", marker_color=fmt.ACCENT))
    else:
        fig = go.Figure(go.Bar(x=data[x], y=data[y], marker_color=fmt.ACCENT))
    fig.update_xaxes(title=x)
    fig.update_yaxes(title=y)
    return _base(fig, height=360)
