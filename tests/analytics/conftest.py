"""Fixtures of the analytics tests: a real DuckDB store in tmp_path and an offline runner on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics import forest
from analytics.offline import DirectWriter
from analytics.runner import AnalyticsRunner
from collector.settings import Settings
from collector.store import Store


@pytest.fixture
def analytics_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "analytics.duckdb")
    yield store
    store.close()


@pytest.fixture
def make_runner(analytics_store: Store) -> Iterator[Callable[..., AnalyticsRunner]]:
    """Build runners on the test store (settings from keyword overrides); stopped at teardown.

    The forests are fitted in the test process (as an offline run does): the child process of a
    collector's runs is tested by itself (test_forest.py) and by the collector's own runs."""
    runners: list[AnalyticsRunner] = []

    def make(store: Store | None = None, scorer: Any = forest.in_process, **settings: Any) -> AnalyticsRunner:
        target = store or analytics_store
        runner = AnalyticsRunner(target, DirectWriter(target), Settings.from_env({}, **settings), scorer=scorer)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()
