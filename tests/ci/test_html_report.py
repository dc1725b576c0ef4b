"""The --memprof-html session report, opened in headless chromium."""

from __future__ import annotations

import pytest

SUITE = """
import pytest

@pytest.mark.parametrize("size", [1, 3, 2])
def test_sizes(size):
    data = bytearray(size * 2**20)

@pytest.mark.limit_memory("1MB")
def test_over():
    data = bytearray(4 * 2**20)

@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"])
def test_hostile(name):
    data = bytearray(100)
"""


@pytest.fixture
def report(pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-html", "memreport")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*memprof: HTML report in memreport/index.html*"])
    index = pytester.path / "memreport" / "index.html"
    assert index.exists() and not (pytester.path / "memreport" / "index.html.partial").exists()
    assert len(list((pytester.path / "memreport" / "captures").glob("*.bin"))) == 6
    return index


def node_ids(page):
    return page.eval_on_selector_all(
        "#tests tbody tr:not([hidden]) td:first-child", "cells => cells.map(c => c.textContent)"
    )


@pytest.mark.browser
def test_index_sorts_filters_and_shows_hostile_ids_as_text(report, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(report.as_uri())
    assert page.title().startswith("Memory report")
    ids = node_ids(page)
    assert ids[0] == "test_suite.py::test_over"  # largest peak first
    assert "test_suite.py::test_hostile[<script>alert(1)</script>]" in ids
    assert "test_suite.py::test_hostile[<img src=x onerror=alert(2)>]" in ids
    assert page.locator("#tests tbody img").count() == 0 and page.locator("#tests tbody script").count() == 0
    page.click("th:has-text('peak')")  # now ascending
    ascending = node_ids(page)
    assert ascending[-1] == "test_suite.py::test_over" and ascending != ids
    page.fill("#filter", "test_sizes")
    assert sorted(node_ids(page)) == [f"test_suite.py::test_sizes[{n}]" for n in (1, 2, 3)]
    assert page.text_content("#shown") == "3 of 6 shown"
    page.fill("#filter", "memory")
    assert node_ids(page) == ["test_suite.py::test_over"]
    assert page.locator("#top-chart rect").count() == 6
    assert not dialogs, dialogs
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_each_test_links_to_its_flame_graph(report, page):
    flamegraphs = report.parent / "flamegraphs"
    assert len(list(flamegraphs.glob("*.html"))) == 6
    page.goto(report.as_uri())
    with page.expect_navigation():
        page.click("#tests tbody tr:has-text('test_over') a")
    assert "flamegraphs/" in page.url
    # The link opens this test's flame graph, which shows the test function: drawn by our script,
    # which the per-test pages share from the report's assets folder.
    page.wait_for_selector("#graph .frame >> text=test_over")
    assert not page.console_errors, page.console_errors
    html = next(flamegraphs.glob("*test_over*.html")).read_text()
    assert '<script src="../assets/flamegraph.js">' in html and "function " not in html
    assert (report.parent / "assets" / "flamegraph.js").is_file()


def test_an_uncreatable_html_folder_is_a_usage_error(pytester):
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    (pytester.path / "file").write_text("not a folder")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-html", "file/report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memprof-html file/report: cannot create it*"])
