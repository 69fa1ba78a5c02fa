"""Fixtures for the ClickHouse backend, run on chdb (ClickHouse embedded in this process).

chdb opens one data directory per process, ever: every test of the session shares one directory
and gets a database of its own, addressed as ``chdb://<dir>?database=<name>``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chdb data directory of this test process."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def chdb_url(chdb_dir: Path) -> str:
    """A TRACEHOUSE_STORE value for a fresh, empty database in the session's chdb directory."""
    return f"chdb://{chdb_dir}?database=t_{uuid.uuid4().hex[:12]}"
