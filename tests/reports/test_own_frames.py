"""Our own frames (memprof run's, runpy's) show in no view of a ``memprof run`` capture."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

import pytest_memprof
from pytest_memprof import Capture
from pytest_memprof.cli.stats import stats_dict
from pytest_memprof.live.stream import LiveSession
from pytest_memprof.reports.flamegraph import flamegraph_data
from pytest_memprof.reports.summary import summary_rows
from pytest_memprof.reports.table import table_data
from pytest_memprof.reports.tree import print_tree

OURS = str(Path(pytest_memprof.__file__).resolve().parent) + "/"
KINDS = ("peak", "leaks", "temporary")


def is_ours(file: str) -> bool:
    return file.startswith(OURS) or "runpy" in file or file.endswith("/bin/memprof")


def files_in_page(data: dict) -> set[str]:
    return {data["strings"][data["frames"][i + 1]] for i in range(0, len(data["frames"]), 4)}


@pytest.mark.parametrize("kind", KINDS)
def test_the_html_reports_show_no_frame_of_ours(two_phase_capture, kind):
    capture = Capture.open(two_phase_capture)
    for data in (table_data(capture, kind=kind), flamegraph_data(capture, kind=kind)):
        files = files_in_page(data)
        assert any(file.endswith("two_phases.py") for file in files)
        assert not [file for file in files if is_ours(file)]


@pytest.mark.parametrize("kind", KINDS)
def test_the_terminal_reports_show_no_frame_of_ours(two_phase_capture, kind):
    capture = Capture.open(two_phase_capture)
    assert not [row for row in summary_rows(capture, kind=kind) if is_ours(row.file)]
    out = io.StringIO()
    print_tree(capture, console=Console(file=out, width=400), kind=kind, biggest_allocs=1000)
    assert "two_phases.py" in out.getvalue() or kind == "temporary"
    assert OURS not in out.getvalue() and "runpy" not in out.getvalue()


def test_stats_top_locations_show_no_frame_of_ours(two_phase_capture):
    data = stats_dict(Capture.open(two_phase_capture), top=1000)
    assert not [row for row in data["top_by_bytes"] if is_ours(row["file"])]


class WholeFile:
    """The capture's bytes in one read, then the end."""

    name = "whole file"

    def __init__(self, data: bytes) -> None:
        self.data: bytes | None = data

    def read(self, timeout: float) -> bytes | None:
        data, self.data = self.data, None
        return data

    def close(self) -> None:
        self.data = None


def test_the_live_view_shows_no_frame_of_ours(two_phase_capture):
    session = LiveSession(WholeFile(two_phase_capture.read_bytes()))
    while session.pump(0.5):
        pass
    rows = session.snapshot().rows
    assert any(row.file.endswith("two_phases.py") for row in rows)
    assert not [row for row in rows if is_ours(row.file)]
