"""``pytest --memprof-html``: every tracked test gets its flame graph, linked from the index."""

from __future__ import annotations

import pytest

SUITE = """
def make_table():
    return [bytearray(100_000) for _ in range(20)]


def test_table():
    assert len(make_table()) == 20


def test_small():
    assert len([str(i) for i in range(100)]) == 100
"""


@pytest.mark.browser
def test_each_test_links_to_its_flame_graph(pytester, page):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-html", "memreport")
    result.assert_outcomes(passed=2)
    graphs = sorted((pytester.path / "memreport" / "flamegraphs").glob("*.html"))
    assert len(graphs) == 2
    page.goto((pytester.path / "memreport" / "index.html").as_uri())
    link = page.locator("#tests tbody a", has_text="open").first  # the largest peak first
    href = link.get_attribute("href")
    assert href and href.startswith("flamegraphs/")
    page.goto((pytester.path / "memreport" / href).as_uri())
    assert "test_suite.py::test_table" in page.title()
    assert page.locator("#graph .frame", has_text="make_table").first.is_visible()
    assert not page.console_errors, page.console_errors
