"""Source lines in the HTML reports' tooltips: read at report time, shown as text, left out with
``--confidential-files``; checked in headless chromium through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_memprof.model import Frame
from pytest_memprof.reports.calltree import CallTree
from pytest_memprof.reports.sources import frame_sources, source_line
from tests.reports.conftest import run_memprof
from tests.reports.test_flamegraph import embedded_data, frame_box

LINE = 'kept.append(bytearray(100_000))  # <script>alert("source")</script>'
PROGRAM = f"""
def make_blocks():
    kept = []
    for _ in range(30):
        {LINE}
    return kept


blocks = make_blocks()
"""


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sources")
    (folder / "program.py").write_text(PROGRAM)
    result = run_memprof("run", "-q", "-o", "prog.bin", "program.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "prog.bin"


def report(capture: Path, tmp_path: Path, kind: str, *args: str) -> Path:
    out = tmp_path / f"{kind}.html"
    result = run_memprof(kind, str(capture), "-o", str(out), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.browser
def test_flamegraph_tooltip_shows_the_source_line_as_text(capture, tmp_path, page):
    out = report(capture, tmp_path, "flamegraph")
    assert "<script>alert" not in out.read_text()  # escaped in the page's data
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(out.as_uri())
    frame_box(page, "make_blocks").hover()
    assert page.text_content("#tooltip .source") == LINE
    assert page.evaluate("document.querySelectorAll('#tooltip script').length") == 0
    assert not dialogs and not page.console_errors, (dialogs, page.console_errors)


@pytest.mark.browser
def test_flamegraph_confidential_files_leaves_the_line_out(capture, tmp_path, page):
    out = report(capture, tmp_path, "flamegraph", "--confidential-files", "all")
    assert "bytearray(100_000)" not in out.read_text()
    assert all(source == -1 for source in embedded_data(out.read_text())["sources"])
    page.goto(out.as_uri())
    frame_box(page, "make_blocks").hover()
    assert "make_blocks" in page.text_content("#tooltip")
    assert page.locator("#tooltip .source").count() == 0
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_table_shows_the_source_line_as_text(capture, tmp_path, page):
    out = report(capture, tmp_path, "table")
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(out.as_uri())
    page.fill("#filter", "make_blocks")
    cell = page.locator("#allocations tbody tr.row td.location").first
    assert cell.get_attribute("title") == LINE  # the location's tooltip
    cell.click()
    assert page.locator("#allocations tr.stack code.source").last.text_content() == LINE  # the allocating frame
    assert not dialogs and not page.console_errors, (dialogs, page.console_errors)
    hidden = report(capture, tmp_path, "table", "--confidential-files", "all", "-f")
    assert "bytearray(100_000)" not in hidden.read_text()
    page.goto(hidden.as_uri())
    page.fill("#filter", "make_blocks")
    cell = page.locator("#allocations tbody tr.row td.location").first
    assert cell.get_attribute("title") is None
    cell.click()
    assert page.locator("#allocations tr.stack code.source").count() == 0


def test_default_rule_is_memrays(tmp_path):
    secret = tmp_path / "secrets.cfg"
    secret.write_text("token = 'hunter2'\n")
    os.chmod(secret, 0o600)
    assert source_line(str(secret), 1) == ""  # neither .py, nor executable, nor world-readable
    assert source_line(str(secret), 1, "none") == "token = 'hunter2'"
    readable = tmp_path / "public.cfg"
    readable.write_text("name = 'x'\n")
    os.chmod(readable, 0o644)
    assert source_line(str(readable), 1) == "name = 'x'"
    script = tmp_path / "private.py"
    script.write_text("x = 1\n")
    os.chmod(script, 0o600)
    assert source_line(str(script), 1) == "x = 1"
    assert source_line(str(script), 1, "all") == ""
    assert source_line(str(tmp_path / "gone.py"), 1) == ""


def test_native_frames_and_unknown_lines_have_no_source(tmp_path):
    script = tmp_path / "code.py"
    script.write_text("a = 1\n")
    tree = CallTree()
    tree.add((Frame("f", str(script), 1), Frame("malloc", str(script), 1, native=True), Frame("g", str(script), 9)))
    sources = frame_sources(tree)
    assert tree.strings[sources[0]] == "a = 1" and sources[1:] == [-1, -1]
    with pytest.raises(ValueError):
        frame_sources(tree, "some")
