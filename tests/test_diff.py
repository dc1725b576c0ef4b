"""Capture.diff: two real captures of two versions of one program, compared location by location."""

from __future__ import annotations

import pytest

from pytest_memprof import Capture, DiffRow, View
from pytest_memprof.diff import line_shifts
from pytest_memprof.model import Frame

from .diff_programs import GREW, SHRANK, line_of


def opened(captures, name: str) -> Capture:
    return Capture.open(captures[name])


def ours(rows: list[DiffRow]) -> list[DiffRow]:
    """The rows of the program's own file (the interpreter's start-up may differ by a few bytes)."""
    return [row for row in rows if row.file.endswith("app.py")]


def row_for(rows: list[DiffRow], function: str) -> DiffRow:
    return next(row for row in rows if row.function == function)


def test_the_diff_names_the_grown_and_the_shrunk_function_with_their_exact_changes(diff_captures):
    rows = opened(diff_captures, "base").diff(opened(diff_captures, "new"))
    grows, shrinks = row_for(rows, "grows"), row_for(rows, "shrinks")
    assert rows[0] is grows and rows[-1] is shrinks  # largest growth first
    assert (grows.peak_change, grows.leaked_change, grows.total_change, grows.allocations_change) == (GREW, GREW,
                                                                                                    GREW, 0)
    assert (shrinks.peak_change, shrinks.leaked_change, shrinks.total_change) == (-SHRANK, -SHRANK, -SHRANK)
    assert grows.status == shrinks.status == "both"
    assert grows.line == line_of("new", "bytearray(250_000)")
    assert grows.new.peak_bytes - grows.base.peak_bytes == GREW and grows.base.peak_bytes > 100_000
    assert "steady" not in {row.function for row in rows}  # unchanged rows are left out
    assert [row.function for row in ours(rows)] == ["grows", "shrinks"]


def test_a_blank_line_above_the_functions_changes_nothing(diff_captures):
    base = opened(diff_captures, "base")
    for stacks in (False, True):
        plain = ours(base.diff(opened(diff_captures, "new"), stacks=stacks))
        moved = ours(base.diff(opened(diff_captures, "blank_line"), stacks=stacks))

        def figures(rows):
            return [(row.function, row.status, row.base, row.new, len(row.stack)) for row in rows]

        assert figures(moved) == figures(plain)
        grows = row_for(moved, "grows")
        assert grows.line == line_of("blank_line", "bytearray(250_000)")
        assert grows.base_location.line == line_of("base", "bytearray(100_000)") == grows.line - 1


def test_a_line_moved_inside_its_function_matches_the_nearest_line(diff_captures):
    rows = opened(diff_captures, "base").diff(opened(diff_captures, "inner_line"))
    grows = row_for(rows, "grows")
    assert grows.status == "both" and grows.peak_change == GREW
    assert (grows.base_location.line, grows.line) == (line_of("base", "100_000"), line_of("inner_line", "250_000"))
    assert row_for(rows, "shrinks").peak_change == -SHRANK


def test_a_new_function_is_new_and_a_gone_one_is_gone(diff_captures):
    base, added = opened(diff_captures, "base"), opened(diff_captures, "added")
    fresh = row_for(base.diff(added), "fresh")
    assert fresh.status == "new" and fresh.base.peak_bytes == 0 and fresh.peak_change > 30_000
    gone = row_for(added.diff(base), "fresh")
    assert gone.status == "gone" and gone.base_location is not None and gone.peak_change == -fresh.peak_change
    assert gone.line == line_of("added", "30_000")


def test_min_bytes_and_the_view(diff_captures):
    base, new = opened(diff_captures, "base"), opened(diff_captures, "new")
    assert [row.function for row in base.diff(new, min_bytes=GREW + 1)] == ["shrinks"]
    assert [row.function for row in base.diff(new, min_bytes=GREW)] == ["grows", "shrinks"]
    # Nothing of the program's was temporary: by that view, none of its rows changed by a byte.
    assert ours(base.diff(new, view=View.TEMPORARY, min_bytes=1)) == []
    assert [row.function for row in ours(base.diff(new, view="leaks"))] == ["grows", "shrinks"]
    with pytest.raises(ValueError, match="unknown view"):
        base.diff(new, view="sideways")


def test_stack_rows_carry_the_whole_stack(diff_captures):
    rows = opened(diff_captures, "base").diff(opened(diff_captures, "new"), stacks=True)
    grows = row_for(rows, "grows")
    assert [frame.function for frame in grows.stack] == ["<module>", "grows"]
    assert grows.peak_change == GREW


def test_line_shifts_follow_each_function_by_its_first_line():
    base = [(Frame("f", "a.py", 3, first_line=2), Frame("g", "a.py", 8, first_line=7))]
    new = [(Frame("f", "a.py", 5, first_line=4), Frame("g", "a.py", 8, first_line=7), Frame("h", "b.py", 1))]
    assert line_shifts(base, new) == {("f", "a.py", 2): 2}
