"""Under pytest-xdist every CI output is written once, by the controller, with every worker's tests."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET

import pytest

SUITE = """
import pytest

@pytest.mark.parametrize("size", range(6))
@pytest.mark.limit_memory("3.5MB")
def test_sizes(size):
    data = bytearray(size * 2**20)
"""


def test_every_output_is_written_once_with_all_tests(pytester, monkeypatch):
    if importlib.util.find_spec("xdist") is None:
        pytest.skip("pytest-xdist is not installed")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_many=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--memprof", "--memprof-junit=memory.xml",
        "--memprof-save-baseline=baseline.json", "--memprof-html=report", "--memprof-csv-file=memory.csv")
    result.assert_outcomes(passed=4, failed=2)
    assert len([line for line in result.stdout.lines if line.startswith("::error ")]) == 2
    # Workers used to append their own share of the step summary before the controller's whole one.
    text = summary.read_text()
    assert text.count("## Memory (pytest-memprof)") == 1, text
    assert text.count("2 test(s) failed on memory") == 1, text
    junit = ET.parse(pytester.path / "memory.xml")
    assert len(junit.findall(".//testcase")) == 6 and len(junit.findall(".//failure")) == 2
    assert len(json.loads((pytester.path / "baseline.json").read_text())["tests"]) == 6
    # The CSV keeps the summary's top 5, drawn from both workers' tests.
    rows = (pytester.path / "memory.csv").read_text().strip().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [f"test_many.py::test_sizes[{size}]" for size in (5, 4, 3, 2, 1)]
    index = (pytester.path / "report" / "index.html").read_text()
    assert all(f"test_sizes[{size}]" in index for size in range(6))
