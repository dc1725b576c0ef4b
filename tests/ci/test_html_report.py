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


RSS_SUITE = """
import time


def test_small_first():
    time.sleep(0.05)


def test_big():
    block = bytearray(100 * 2**20)  # zero-filled: resident while the test runs, gone after it
    time.sleep(0.05)
    del block


def test_small_last():
    time.sleep(0.05)
"""


def rss_chart(page) -> dict:
    return page.eval_on_selector("#rss-chart", """chart => ({
        max: Number(chart.dataset.maxBytes), top: chart.querySelector("text.top").textContent,
        span: chart.querySelector("text.span").textContent,
        lines: Array.from(chart.querySelectorAll("polyline.rss")).map(line => line.getAttribute("points")
            .trim().split(/\\s+/).map(point => point.split(",").map(Number)))})""")


@pytest.mark.browser
def test_the_rss_chart_has_every_tests_highest_rss_and_agrees_with_memprof_sys(pytester, page):
    pytester.makepyfile(test_suite=RSS_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "--memprof-html",
                                           "memreport", "--memprof-sys=0.05")
    result.assert_outcomes(passed=3)
    page.goto((pytester.path / "memreport" / "index.html").as_uri())
    chart = rss_chart(page)
    # The 100 MiB test is there, though the process gave its memory back before the next test.
    assert chart["max"] >= 100 * 2**20, chart
    (line,) = chart["lines"]
    # The session starts at its start, not at its maximum: the first test's RSS is below the top.
    assert line[0][1] > 20 + 1, line[:3]
    assert min(y for _, y in line) == pytest.approx(20, abs=0.1)
    # The --memprof-sys chart on the same page says the same top and the same span.
    system = page.eval_on_selector("#system", """section => ({
        span: section.querySelector("text.span").textContent,
        rows: Array.from(section.querySelectorAll("#system-minmax tr")).map(row => row.textContent)})""")
    assert system["span"] == chart["span"], (system, chart)
    rss_row = next(row for row in system["rows"] if "pytest process RSS" in row)
    assert chart["top"] in rss_row, (rss_row, chart)
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_the_rss_chart_under_xdist_has_a_line_per_worker(pytester, page):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    pytester.makepyfile(test_suite=RSS_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2",
                                           "--memprof-html", "memreport")
    result.assert_outcomes(passed=3)
    page.goto((pytester.path / "memreport" / "index.html").as_uri())
    assert "No RSS samples" not in page.text_content("main")
    chart = rss_chart(page)
    assert chart["max"] >= 100 * 2**20, chart
    assert 1 <= len(chart["lines"]) <= 2, chart
    assert not page.console_errors, page.console_errors
