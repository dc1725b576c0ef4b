"""Heap-over-time charts tell the truth: a test's chart is the test's, and every chart reaches the peak."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_memprof import Capture
from pytest_memprof.reports.flamegraph import flamegraph_data, render_flamegraph
from pytest_memprof.sizes import format_size
from tests.reports.conftest import run_memprof

SUITE = """
import time


def test_slow_first():
    time.sleep(0.4)


def test_quick_peak():
    blocks = [bytearray(1024 * 1024) for _ in range(2)]
    del blocks
    kept = bytearray(5_000)
    assert kept
"""

# A peak that lasts a few microseconds, between two of the sampler's 10 ms ticks, in a program
# that is over in a few tens of milliseconds.
SHORT_PROGRAM = """
def spike():
    block = bytearray(20 * 1024 * 1024)
    del block


kept = [bytearray(1_000) for _ in range(100)]
spike()
"""


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory) -> Path:
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    folder = tmp_path_factory.mktemp("timelines")
    (folder / "test_suite.py").write_text(SUITE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--memprof",
            "--memprof-bin-dir",
            "captures",
            "--memprof-html",
            "memreport",
            "--junitxml",
            "junit.xml",
            "test_suite.py",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def _test_capture(folder: Path, name: str) -> Path:
    (path,) = [path for path in (folder / "captures").glob("*.bin") if path.name.endswith(f"{name}.bin")]
    return path


def _junit_time(folder: Path, name: str) -> float:
    (case,) = [case for case in ET.parse(folder / "junit.xml").iter("testcase") if case.get("name") == name]
    return float(case.get("time"))


def test_a_tests_capture_spans_the_tests_own_window(suite_run):
    capture = Capture.open(_test_capture(suite_run, "test_quick_peak"))
    timeline = capture.timeline()
    # Its clock starts when the test does (not when the session did, 0.4 s of another test earlier),
    # at the heap it began with: nothing of its own yet.
    assert timeline[0].time_s == 0 and timeline[0].heap_bytes == 0, timeline[:3]
    # Its duration is the test's: within what pytest measured for the test (setup and teardown included).
    assert capture.duration <= _junit_time(suite_run, "test_quick_peak"), capture.duration
    assert all(0 <= point.time_s <= capture.duration for point in timeline)
    assert 0 <= capture.peak_time_s <= capture.duration
    # Its highest point is the test's peak (2 MiB), not what a 10 ms sample happened to see.
    assert capture.peak_bytes >= 2 * 1024 * 1024
    assert max(point.heap_bytes for point in timeline) == capture.peak_bytes


def test_a_tests_page_charts_the_tests_window(suite_run):
    capture = Capture.open(_test_capture(suite_run, "test_quick_peak"))
    data = flamegraph_data(capture)
    heap = data["timeline"][1::3]
    assert max(heap) == data["peak_bytes"] == capture.peak_bytes
    assert data["timeline"][0] == 0 and heap[0] == 0
    assert data["duration_ms"] <= round(1000 * _junit_time(suite_run, "test_quick_peak"))


@pytest.fixture(scope="module")
def short_capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("short")
    (folder / "short.py").write_text(SHORT_PROGRAM)
    result = run_memprof("run", "-q", "-o", "short.bin", "short.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "short.bin"


def test_a_short_programs_chart_reaches_its_peak_at_the_peaks_time(short_capture):
    capture = Capture.open(short_capture)
    assert capture.peak_bytes >= 20 * 1024 * 1024
    data = flamegraph_data(capture)
    timeline = data["timeline"]
    heap = timeline[1::3]
    top = heap.index(max(heap))
    assert heap[top] == capture.peak_bytes
    assert timeline[3 * top] == data["peak_ms"]


@pytest.mark.browser
def test_the_pages_chart_says_the_headers_peak(short_capture, suite_run, tmp_path, page):
    for capture in (Capture.open(short_capture), Capture.open(_test_capture(suite_run, "test_quick_peak"))):
        target = render_flamegraph(capture, tmp_path / f"{capture.path.stem}.html")
        page.goto(target.as_uri())
        legend = page.text_content("#chart text")
        assert f"heap (blue) up to {format_size(capture.peak_bytes)}" in legend, legend
        assert format_size(capture.peak_bytes) in page.text_content("header")
        # The peak line stands where the curve is highest.
        peak_x = float(page.get_attribute("#chart line", "x1"))
        path = page.get_attribute("#chart path.heap", "d")
        points = [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+),([\d.]+)", path)]
        highest = min(y for _, y in points)
        assert any(abs(x - peak_x) < 1 and y == highest for x, y in points), (peak_x, points[:20])
        assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_a_tests_page_from_memprof_html_is_the_tests(suite_run, page):
    (graph,) = [path for path in (suite_run / "memreport" / "flamegraphs").glob("*test_quick_peak*.html")]
    page.goto(graph.as_uri())
    legend = page.text_content("#chart text")
    capture = Capture.open(_test_capture(suite_run, "test_quick_peak"))
    assert f"up to {format_size(capture.peak_bytes)}" in legend, legend
    duration = float(re.search(r"duration ([\d.]+) s", page.text_content("header")).group(1))
    assert duration <= _junit_time(suite_run, "test_quick_peak")
    assert not page.console_errors, page.console_errors
