"""Detection thresholds and alert rules, loaded from ``analytics/alert_rules.toml`` plus the user's file.

Validated at load; every problem is one line of :class:`RulesFileError`.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from analytics.userfiles import read_user_file

METRICS = (
    "traces", "traces_failed", "error_rate", "errors", "cost_usd", "avg_latency_ms", "llm_calls",
    "tool_calls", "tokens",
)  # fmt: skip
OPS = (">", ">=", "<", "<=")
GROUP_BY = ("service", "agent", "all")
SEVERITIES = ("info", "warning", "error", "critical")


_TYPES: dict[str, type] = {"float": float, "int": int, "bool": bool, "str": str}


class RulesFileError(ValueError):
    """A rules file is unreadable or invalid; one line per problem."""


@dataclass(frozen=True, slots=True)
class Detection:
    slow_trace_ms: float = 30_000
    high_cost_usd: float = 10.0
    loop_min_repeats: int = 5
    error_rate_threshold: float = 0.05
    error_rate_window_minutes: int = 5
    error_rate_min_traces: int = 20
    trace_z: float = 4.5
    trace_z_alone: float = 6.0
    baseline_days: float = 7
    min_baseline_traces: int = 50
    max_baseline_traces: int = 4096
    isolation_forest_trees: int = 100
    series_z: float = 6.0
    series_baseline_minutes: int = 60
    series_min_traces: int = 5
    settle_seconds: float = 30


@dataclass(frozen=True, slots=True)
class Notify:
    timeout_s: float = 5.0
    retries: int = 3
    notify_resolved: bool = False


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    severity: str
    threshold: float
    window_minutes: int
    metric: str | None = None
    anomaly: tuple[str, ...] = ()
    op: str = ">="
    group_by: str = "service"
    min_traces: int = 0
    enabled: bool = True

    def breached(self, value: float) -> bool:
        return {
            ">": value > self.threshold, ">=": value >= self.threshold,
            "<": value < self.threshold, "<=": value <= self.threshold,
        }[self.op]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rules:
    detection: Detection
    notify: Notify
    alerts: tuple[AlertRule, ...]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def _section(data: dict[str, Any], cls: type, where: str, errors: list[str], base: Any) -> Any:
    known = {f.name: f for f in fields(cls)}
    values = {f: getattr(base, f) for f in known}
    for key, value in data.items():
        if key not in known:
            errors.append(f"{where}: unknown key {key!r}")
            continue
        want = _TYPES[str(known[key].type)]
        raw = value
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            errors.append(f"{where}.{key}={raw!r}: must be {want.__name__}")
            continue
        if want in (int, float) and value < 0:
            errors.append(f"{where}.{key}={raw!r}: must be >= 0")
            continue
        values[key] = value
    return cls(**values)


def _alert(data: dict[str, Any], where: str, errors: list[str]) -> AlertRule | None:
    allowed = {f.name for f in fields(AlertRule)}
    before = len(errors)
    for key in data:
        if key not in allowed:
            errors.append(f"{where}: unknown key {key!r}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        errors.append(f"{where}: name is required")
        return None
    where = f"{where} ({name})"
    if data.get("enabled") is False:
        return AlertRule(name=name, severity="info", threshold=0, window_minutes=1, enabled=False)
    metric, anomaly = data.get("metric"), data.get("anomaly", [])
    if isinstance(anomaly, str):
        anomaly = [anomaly]
    if (metric is None) == (not anomaly):
        errors.append(f"{where}: give exactly one of metric or anomaly")
    if metric is not None and metric not in METRICS:
        errors.append(f"{where}: metric {metric!r} must be one of {', '.join(METRICS)}")
    for key, choices in (("severity", SEVERITIES), ("op", OPS), ("group_by", GROUP_BY)):
        if key in data and data[key] not in choices:
            errors.append(f"{where}: {key} {data[key]!r} must be one of {', '.join(choices)}")
    for key in ("threshold", "window_minutes"):
        if (
            not isinstance(data.get(key), (int, float))
            or isinstance(data.get(key), bool)
            or data[key] < 0
        ):
            errors.append(f"{where}: {key} must be a number >= 0")
    if len(errors) > before:
        return None
    return AlertRule(
        name=name,
        severity=data.get("severity", "warning"),
        threshold=float(data["threshold"]),
        window_minutes=max(1, int(data["window_minutes"])),
        metric=metric,
        anomaly=tuple(str(a) for a in anomaly),
        op=data.get("op", ">="),
        group_by=data.get("group_by", "service"),
        min_traces=int(data.get("min_traces", 0)),
    )


def _apply(rules: Rules, data: dict[str, Any], name: str, errors: list[str]) -> Rules:
    for key in data:
        if key not in ("detection", "notify", "alert"):
            errors.append(f"{name}: unknown section {key!r}")
    detection = _section(
        data.get("detection", {}), Detection, f"{name} [detection]", errors, rules.detection
    )
    notify = _section(data.get("notify", {}), Notify, f"{name} [notify]", errors, rules.notify)
    alerts = {a.name: a for a in rules.alerts}
    for i, raw in enumerate(data.get("alert", []), 1):
        rule = _alert(raw, f"{name} [[alert]] #{i}", errors)
        if rule is not None:
            alerts[rule.name] = rule
    return Rules(detection, notify, tuple(alerts.values()))


def _read(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesFileError(f"{name}: not valid TOML ({exc})") from None


def load_rules(user_file: str | Path | None = None) -> Rules:
    """The shipped rules with the user's file applied over them."""
    errors: list[str] = []
    shipped = resources.files("analytics").joinpath("alert_rules.toml").read_text(encoding="utf-8")
    rules = _apply(Rules(Detection(), Notify(), ()), _read(shipped, "analytics/alert_rules.toml"),
                   "analytics/alert_rules.toml", errors)  # fmt: skip
    if user_file:
        text, name = read_user_file(user_file, "rules file", RulesFileError)
        rules = _apply(rules, _read(text, name), name, errors)
    if errors:
        raise RulesFileError("\n".join(errors))
    return Rules(rules.detection, rules.notify, tuple(a for a in rules.alerts if a.enabled))
