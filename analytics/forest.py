"""IsolationForest fits in a short-lived child process: scikit-learn never loads into the collector.

scikit-learn with SciPy adds ~150 MB to a process that imports it, and that memory is not given
back. The anomaly job runs inside the collector every minute, so :func:`score` starts
``python -m analytics.forest``, sends it the feature matrices of every workflow group (one
``.npz`` on stdin), and reads the scores back (one ``.npz`` on stdout); the child exits and its
memory goes back to the OS. A crash, a kill or a time-out of the child costs only that run's
forest verdicts: :func:`score` logs one line and returns None, and the caller reports what it can
without the forest. Fits use a fixed ``random_state``, so a run gives the scores it gave in-process.

This module imports only numpy at the top: it is also the child's main module.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

TIMEOUT_S = 300.0  # a run's fits take seconds; a child still running after this is killed
_ROOT = Path(__file__).resolve().parents[1]  # holds the analytics package: the child's cwd, so its import path


@dataclass(frozen=True, slots=True)
class Group:
    """One workflow group's forest: trained on ``base`` (rows × features), scoring ``candidates``."""

    base: np.ndarray
    candidates: np.ndarray
    trees: int


@dataclass(frozen=True, slots=True)
class Scores:
    """``score_samples`` of each candidate, and the forest's ``offset_`` (isolated: score < offset)."""

    scores: np.ndarray
    offset: float


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def fit_and_score(groups: list[Group]) -> list[Scores]:
    """Fit one IsolationForest per group and score its candidates (what the child runs)."""
    from sklearn.ensemble import IsolationForest

    out = []
    for group in groups:
        model = IsolationForest(n_estimators=group.trees, random_state=0).fit(group.base)
        out.append(Scores(model.score_samples(group.candidates), float(model.offset_)))
    return out


def score(groups: list[Group], timeout_s: float = TIMEOUT_S) -> list[Scores] | None:
    """Scores of every group, computed in a child process; None (logged once) when it failed."""
    if not groups:
        return []
    request = {"trees": np.array([g.trees for g in groups], dtype=np.int64)}
    for i, g in enumerate(groups):
        request[f"base{i}"], request[f"cand{i}"] = g.base, g.candidates
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "analytics.forest"], input=_pack(request), capture_output=True,
            timeout=timeout_s, cwd=_ROOT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.error("analytics: IsolationForest process failed (%s); outliers of this run by robust z only", exc)
        return None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        logger.error(
            "analytics: IsolationForest process failed (exit %s: %s); outliers of this run by robust z only",
            done.returncode, lines[-1] if lines else "no message",
        )  # fmt: skip
        return None
    try:
        reply = _unpack(done.stdout)
        result = [Scores(reply[f"scores{i}"], float(reply["offsets"][i])) for i in range(len(groups))]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        logger.error("analytics: IsolationForest process gave an unreadable reply (%s); outliers by robust z only", exc)
        return None
    logger.debug("analytics: %d forests in a child process, %.2f s", len(groups), time.monotonic() - started)
    return result


def in_process(groups: list[Group]) -> list[Scores] | None:
    """The same fits in this process: for a run that is a short-lived process of its own (the
    offline ``tracehouse analytics run``), where a child would only add its start-up."""
    return fit_and_score(groups)


def _main() -> None:
    request = _unpack(sys.stdin.buffer.read())
    trees = request["trees"]
    groups = [Group(request[f"base{i}"], request[f"cand{i}"], int(t)) for i, t in enumerate(trees)]
    fitted = fit_and_score(groups)
    reply = {f"scores{i}": s.scores for i, s in enumerate(fitted)}
    reply["offsets"] = np.array([s.offset for s in fitted], dtype=np.float64)
    sys.stdout.buffer.write(_pack(reply))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _main()
