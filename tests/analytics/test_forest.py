"""IsolationForests in a child process: the same scores as in-process, and a failed child costs a
run only its forest verdicts (one log line; every other job and the robust-z outliers stay)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest

from analytics import forest
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.store import Store

SEEDED = Synth(traces=3000, minutes=60, p_latency=0.02, p_cost=0.02, p_loop=0.01, salt=11)


def _groups() -> list[forest.Group]:
    rng = np.random.default_rng(5)
    return [
        forest.Group(rng.lognormal(size=(400, 9)), rng.lognormal(size=(40, 9)) * 3, 100),
        forest.Group(rng.normal(size=(60, 9)), rng.normal(size=(7, 9)), 25),
    ]


def test_the_child_scores_exactly_as_in_process() -> None:
    groups = _groups()
    child, here = forest.score(groups), forest.in_process(groups)
    assert child is not None and here is not None and len(child) == len(here) == 2
    for a, b in zip(child, here, strict=True):
        assert a.offset == b.offset
        np.testing.assert_array_equal(a.scores, b.scores)  # fixed random_state: bit for bit
    assert forest.score([]) == []  # nothing to fit: no child started


def test_a_failing_child_is_one_log_line_and_none(caplog: pytest.LogCaptureFixture) -> None:
    broken = [forest.Group(np.zeros((0, 9)), np.zeros((3, 9)), 10)]  # sklearn refuses to fit no rows
    with caplog.at_level(logging.ERROR, logger="analytics.forest"):
        assert forest.score(broken) is None
        assert forest.score(_groups(), timeout_s=0.01) is None  # killed: still running
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("IsolationForest process failed" in m for m in messages)
    assert "\n" not in messages[0] and "0 sample(s)" in messages[0]  # the child's last error line
    assert forest.score(_groups()) is not None  # the next run starts a fresh child


def _anomalies(store: Store) -> dict[str, tuple[str, str, float]]:
    rows = store.cursor().execute("SELECT anomaly_id, kind, detector, score FROM anomalies").fetchall()
    return {a: (k, d, s) for a, k, d, s in rows}


def test_a_run_whose_child_fails_completes_with_robust_z_outliers(
    tmp_path_factory: pytest.TempPathFactory, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    stores = [Store(tmp_path_factory.mktemp(name) / "a.duckdb") for name in ("ok", "failed")]
    try:
        for store in stores:
            generate(store.write_connection, SEEDED)
        now = SEEDED.end + timedelta(minutes=5)
        make_runner(stores[0], scorer=forest.score).run_now(now=now)
        report = make_runner(stores[1], scorer=functools.partial(forest.score, timeout_s=0.01)).run_now(now=now)
        ok, failed = _anomalies(stores[0]), _anomalies(stores[1])
        assert report.spans > 0 and report.minutes > 0  # every other job ran
        for table in ("span_costs", "trace_features", "minute_rollup", "call_minutes"):
            counts = [s.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()[0] for s in stores]
            assert counts[0] == counts[1] > 0, table
        assert any(d == "isolation_forest" for _, d, _ in ok.values())
        assert not any(d == "isolation_forest" for _, d, _ in failed.values())
        # Without the forest: every rule and window detection, and exactly the trace outliers far
        # enough off by themselves (trace_z_alone), with the same scores, as robust_z.
        alone = make_runner(stores[0]).rules.detection.trace_z_alone
        outlier = {a for a, (kind, _, _) in ok.items() if kind.endswith("_outlier")}
        expected = {a: (k, "robust_z" if a in outlier else d, z) for a, (k, d, z) in ok.items()
                    if a not in outlier or z >= alone}  # fmt: skip
        assert failed == expected and outlier & set(failed) and outlier - set(failed)
    finally:
        for store in stores:
            store.close()
