"""collector.dedup.first_unstored: which rows of a batch the writer inserts (the SQL half,
stored_keys, runs in every writer test against a real DuckDB file)."""

from __future__ import annotations

from collector.dedup import first_unstored

A, B, C, D = ("t1", "a"), ("t1", "b"), ("t2", "a"), ("t2", "b")


def test_the_usual_batch_keeps_every_row_without_a_list_of_them() -> None:
    assert first_unstored([2, 2], [A, B, C, D], set()) == (None, [2, 2])


def test_stored_spans_are_dropped_and_counted_per_request() -> None:
    assert first_unstored([2, 2], [A, B, C, D], {B, C}) == ([0, 3], [1, 1])


def test_a_key_repeated_in_the_batch_is_kept_once_where_it_first_appears() -> None:
    # Request 1 repeats A within itself; request 2 sends A and C again.
    assert first_unstored([3, 2], [A, B, A, A, C], set()) == ([0, 1, 4], [2, 1])


def test_a_request_of_only_stored_spans_counts_zero() -> None:
    stored = {A, B}
    assert first_unstored([2, 1], [A, B, C], stored) == ([2], [0, 1])
    assert stored == {A, B}  # the caller's set is not changed


def test_an_empty_batch() -> None:
    assert first_unstored([], [], set()) == (None, [])
