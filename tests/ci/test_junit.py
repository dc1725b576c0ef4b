"""Both JUnit files through pytester: pytest's --junitxml properties and our --memprof-junit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

SUITE = """
import pytest

@pytest.mark.limit_memory("1MB")
def test_over():
    data = bytearray(3 * 2**20)

class TestGroup:
    def test_fine(self):
        data = bytearray(2 * 2**20)
"""


def test_memory_junit_has_a_testcase_per_test_and_a_failure_per_broken_limit(pytester):
    ours = pytester.path / "memory.xml"
    theirs = pytester.path / "junit.xml"
    pytester.makepyfile(test_mem=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-junit", str(ours),
                                           "--junitxml", str(theirs))
    result.assert_outcomes(passed=1, failed=1)
    root = ET.parse(ours).getroot()
    suite = root.find("testsuite") if root.tag == "testsuites" else root
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert suite_props["memprof_tests"] == "2" and suite_props["memprof_memory_failures"] == "1"
    cases = {(case.get("classname"), case.get("name")): case for case in suite.iter("testcase")}
    assert set(cases) == {("test_mem", "test_over"), ("test_mem.TestGroup", "test_fine")}
    over = cases[("test_mem", "test_over")]
    failure = over.find("failure")
    assert "allowed by limit_memory('1MB')" in failure.get("message")
    assert "test_over at test_mem.py:5" in failure.text
    props = {p.get("name"): int(p.get("value")) for p in over.find("properties")
             if p.get("value").isdigit()}
    assert props["memprof_peak_bytes"] >= 3 * 2**20 and props["memprof_limit_bytes"] == 2**20
    fine = {p.get("name"): p.get("value") for p in cases[("test_mem.TestGroup", "test_fine")].find("properties")}
    assert int(fine["memprof_peak_bytes"]) >= 2 * 2**20
    # pytest's own report carries the same figures as <property> entries.
    pytest_cases = {case.get("name"): case for case in ET.parse(theirs).getroot().iter("testcase")}
    pytest_props = {p.get("name"): p.get("value") for p in pytest_cases["test_over"].iter("property")}
    assert pytest_props["memprof_peak_bytes"] == str(props["memprof_peak_bytes"])


def test_an_unwritable_output_file_fails_the_run_with_one_clear_line(pytester):
    pytester.makepyfile(test_ok="def test_ok():\n    data = bytearray(1000)\n")
    # A missing folder is made (issue 18.9); a file where the folder should be cannot be.
    blocker = pytester.path / "blocker"
    blocker.write_text("a file, not a folder")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof",
                                           "--memprof-junit", str(blocker / "memory.xml"),
                                           "--memprof-csv-file", str(blocker / "memory.csv"))
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*memprof: cannot write */memory.xml: *",
                                 "*memprof: cannot write */memory.csv: *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
