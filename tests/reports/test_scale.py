"""Scale: 1 million allocations from 10,000 distinct stacks make a flame graph well under 10 MB."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memprof import Capture
from pytest_memprof.reports.flamegraph import render_flamegraph
from tests.conftest import subprocess_env

from .conftest import run_memprof

MANY_STACKS = Path(__file__).resolve().parents[2] / "examples" / "many_stacks.py"

LIMIT = 10 * 2**20


@pytest.fixture(scope="module")
def many_stacks_capture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    shutil.copy(MANY_STACKS, folder / "many_stacks.py")
    result = run_memprof("run", "-q", "-o", "many.bin", "many_stacks.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "many.bin"


def test_a_million_allocations_from_10000_stacks_stay_under_10_mb(many_stacks_capture, tmp_path):
    capture = Capture.open(many_stacks_capture, temporal=True)
    assert capture.total_allocations >= 1_000_000
    leaves = {stat.location.function for stat in capture.peak_stacks() if stat.location}
    assert len({name for name in leaves if name.startswith("leaf_")}) == 10_000
    plain = render_flamegraph(capture, tmp_path / "plain.html")
    temporal = render_flamegraph(capture, tmp_path / "temporal.html", temporal=True)
    assert plain.stat().st_size < LIMIT
    assert temporal.stat().st_size < LIMIT


@pytest.mark.browser
def test_the_large_flame_graph_opens_in_chromium(many_stacks_capture, tmp_path, page):
    target = render_flamegraph(Capture.open(many_stacks_capture), tmp_path / "fg.html")
    page.goto(target.as_uri())
    page.wait_for_selector("#graph .frame")
    assert page.locator("#graph .frame", has_text="top_0").count() == 1
    page.fill("#search", "leaf_")
    assert "matching frame(s)" in page.text_content("#matches")
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_the_large_temporal_graph_decodes_every_row(many_stacks_capture, tmp_path, page):
    capture = Capture.open(many_stacks_capture, temporal=True)
    target = render_flamegraph(capture, tmp_path / "fg.html", temporal=True)
    page.goto(target.as_uri())
    page.wait_for_selector("#chart.temporal")
    chart = page.locator("#chart").bounding_box()
    page.mouse.move(chart["x"] + 1, chart["y"] + 50)
    page.mouse.down()
    page.mouse.move(chart["x"] + chart["width"] / 2, chart["y"] + 50)
    page.mouse.move(chart["x"] + chart["width"] - 1, chart["y"] + 50)
    page.mouse.up()
    # The drag ends a pixel inside the chart, so its end is the last tick at or after that point, or
    # the end of the capture: which one depends on where the sampler's last tick fell. Either way the
    # page's count must be the reader's for the ticks it shows, which needs every row decoded.
    start = float(page.get_attribute("#range-text", "data-start")) / 1000
    end = page.get_attribute("#range-text", "data-end")
    stats = capture.range_stacks(start, None if end == "end" else float(end) / 1000)
    count = sum(stat.count for stat in stats)
    assert count >= 1_000_000
    assert f" in {count:,} allocation(s)" in page.text_content("#range-text")
    assert not page.console_errors, page.console_errors


def output_on_a_terminal(command: list[str], cwd, **env: str) -> tuple[int, bytes]:
    """Run ``command`` with a pseudo-terminal as stdout and stderr; return its exit code and all it wrote."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, cwd=cwd,
                               env=subprocess_env(**env))
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command has exited
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    return process.wait(timeout=60), output


@pytest.mark.parametrize("command", ["flamegraph", "tree"])
def test_a_long_read_shows_a_progress_bar_on_a_terminal(command, many_stacks_capture, tmp_path):
    extra = ["-o", str(tmp_path / "fg.html")] if command == "flamegraph" else ["--biggest-allocs", "1"]
    shown = [sys.executable, "-m", "pytest_memprof", command, *extra, str(many_stacks_capture)]
    # The bar appears once a read has taken MEMPROF_PROGRESS_DELAY seconds (0.5 by default)
    code, output = output_on_a_terminal(shown, tmp_path, MEMPROF_PROGRESS_DELAY="0")
    assert code == 0, output[-2000:]
    assert b"reading many.bin" in output and (b"kB" in output or b"MB" in output)
    code, output = output_on_a_terminal([*shown, "-f"] if command == "flamegraph" else shown, tmp_path,
                                        MEMPROF_PROGRESS_DELAY="600")
    assert code == 0, output[-2000:]
    assert b"reading many.bin" not in output
