"""The right view first: a failed test's page opens on what it failed on, frames users do not look
for can be hidden, and slivers of tiny stacks become one box."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_memprof import Capture
from pytest_memprof.reports.flamegraph import render_flamegraph
from tests.reports.conftest import run_memprof

SUITE = """
import pytest

kept = []


@pytest.mark.no_leaks
def test_leaks():
    kept.append(bytearray(300_000))


@pytest.mark.limit_memory("100 KB")
def test_peak():
    block = bytearray(400_000)
    del block


def test_passes():
    assert [bytearray(1_000) for _ in range(10)]
"""

# A module whose import allocates (frames of the import system around it), a script run through
# runpy (its frames in the middle of the stack), and a program allocating in its own functions.
MODULE = "TABLE = [bytearray(1_000) for _ in range(400)]\n"
INNER = """
def inner_work():
    return [bytearray(2_000) for _ in range(300)]


inner = inner_work()
"""
PROGRAM = """
import runpy

import heavy_module

result = runpy.run_path("inner.py")
"""

# One large allocation, and 300 stacks of 40 frames holding about 1 KB each: at 1280 px every one
# of them is a sliver between one and two pixels wide.
SLIVERS = """
def deep(level, tag, keep):
    if level:
        return deep(level - 1, tag, keep)
    keep.append(bytes(1000) + tag)


def make(count, keep):
    for index in range(count):
        code = compile("def leaf_%d(keep, tag, deep):\\n    deep(40, tag, keep)\\n" % index, "<leaf>", "exec")
        namespace = {}
        exec(code, namespace)
        namespace["leaf_%d" % index](keep, str(index).encode(), deep)


big = bytearray(600_000)
small = []
make(300, small)
"""


@pytest.fixture(scope="module")
def suite_report(tmp_path_factory) -> Path:
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    folder = tmp_path_factory.mktemp("first-view")
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
            "--memprof-html",
            "memreport",
            "test_suite.py",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return folder / "memreport"


@pytest.mark.browser
def test_a_failed_tests_page_opens_on_what_it_failed_on(suite_report, page):
    page.goto((suite_report / "index.html").as_uri())
    views = {}
    for row in page.locator("#tests tbody tr").all():
        nodeid = row.locator("td.node").text_content()
        link = row.locator("a[data-view]")
        views[nodeid.split("::")[-1]] = (
            link.get_attribute("data-view"),
            link.text_content(),
            link.get_attribute("href"),
        )
    assert views["test_leaks"][:2] == ("leaks", "open (leaks)"), views
    assert views["test_peak"][:2] == ("peak", "open (peak)"), views
    assert views["test_passes"][0] == "peak", views
    assert "view" in page.text_content("#tests thead")
    page.goto((suite_report / views["test_leaks"][2]).as_uri())
    page.wait_for_selector("#graph .frame")
    assert "leaked" in page.text_content("header .facts")
    assert page.locator("#graph .frame", has_text="test_leaks").count() >= 1
    page.goto((suite_report / views["test_peak"][2]).as_uri())
    assert "at the peak" in page.text_content("header .facts")
    assert not page.console_errors, page.console_errors


@pytest.fixture(scope="module")
def layered_capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("layers")
    (folder / "heavy_module.py").write_text(MODULE)
    (folder / "inner.py").write_text(INNER)
    (folder / "program.py").write_text(PROGRAM)
    result = run_memprof("run", "-q", "-o", "layers.bin", "program.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "layers.bin"


def frame_names(page) -> list[str]:
    return page.eval_on_selector_all("#graph .frame", "boxes => boxes.map(b => b.textContent)")


@pytest.mark.browser
def test_import_system_and_irrelevant_frames_can_be_hidden(layered_capture, tmp_path, page):
    capture = Capture.open(layered_capture)
    functions = {frame.function for stat in capture.peak_stacks() for frame in stat.frames}
    assert "run_path" in functions and "_find_and_load" in functions  # the capture has both kinds
    target = render_flamegraph(capture, tmp_path / "layers.html")
    page.set_viewport_size({"width": 3000, "height": 900})
    page.goto(target.as_uri())
    page.wait_for_selector("#graph .frame")
    # By default runpy's frames are hidden (irrelevant), the import system's are shown.
    assert page.is_checked("#hide-irrelevant") and not page.is_checked("#hide-import")
    total = page.locator("#graph .frame.root").first.text_content()
    names = frame_names(page)
    assert "inner_work" in names and "run_path" not in names and "_find_and_load" in names, names
    page.check("#hide-import")
    names = frame_names(page)
    assert "_find_and_load" not in names and "inner_work" in names, names
    # The module's own frame is still there, under the program's.
    assert sum(name == "<module>" for name in names) >= 2, names
    page.uncheck("#hide-irrelevant")
    page.uncheck("#hide-import")  # runpy is frozen too, on Pythons that freeze it
    assert "run_path" in frame_names(page)
    # Hiding changes the shape, not the total.
    assert page.locator("#graph .frame.root").first.text_content() == total
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_slivers_of_tiny_stacks_are_one_small_stacks_box(tmp_path, page):
    (tmp_path / "slivers.py").write_text(SLIVERS)
    result = run_memprof("run", "-q", "-o", "slivers.bin", "slivers.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    target = render_flamegraph(Capture.open(tmp_path / "slivers.bin"), tmp_path / "slivers.html")
    page.goto(target.as_uri())
    page.wait_for_selector("#graph .frame")
    small = page.locator("#graph .frame.small")
    assert small.count() >= 1
    texts = [text for text in small.all_text_contents() if text]
    assert any("small stacks" in text for text in texts), texts
    widths = page.eval_on_selector_all("#graph .frame", "boxes => boxes.map(b => parseFloat(b.style.width))")
    assert min(widths) >= 1
    # No column of 40 slivers per tiny stack: far fewer boxes than 300 stacks of 40 frames.
    assert len(widths) < 300, len(widths)
    small.first.hover()
    assert "small stack" in page.text_content("#tooltip")
    assert not page.console_errors, page.console_errors
