"""Baselines through pytester: save, compare, fail on increase, bad files."""

from __future__ import annotations

import json
import shutil

import pytest

SUITE = """
import pytest

SIZES = {sizes}

@pytest.mark.parametrize("name", sorted(SIZES))
def test_alloc(name):
    data = bytearray(SIZES[name])
"""


def write_suite(pytester, sizes):
    pytester.makepyfile(test_suite=SUITE.format(sizes=sizes))
    # Rewritten within the same second at the same length (4194304 -> 8388608), the file would
    # pass the mtime+size check of the cached bytecode, and the old sizes would run.
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)


def test_saved_baseline_fails_only_the_test_that_grew(pytester):
    base = pytester.path / "baseline.json"
    write_suite(pytester, {"a": 4 * 2**20, "b": 4 * 2**20, "c": 1000})
    saved = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-save-baseline", str(base))
    saved.assert_outcomes(passed=3)
    data = json.loads(base.read_text())
    assert data["schema_version"] == 1 and data["machine"]["python"]
    assert set(data["tests"]) == {f"test_suite.py::test_alloc[{name}]" for name in "abc"}
    assert data["tests"]["test_suite.py::test_alloc[a]"]["peak_bytes"] >= 4 * 2**20

    # a grows by 50%; c doubles but stays under the 64 KiB noise floor; d is new.
    write_suite(pytester, {"a": 6 * 2**20, "b": 4 * 2**20, "c": 2000, "d": 2**20})
    compared = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-compare", str(base),
                                             "--memprof-fail-on-increase", "10%")
    compared.assert_outcomes(passed=3, failed=1)
    compared.stdout.fnmatch_lines([
        "*Peak grew +4*% over the baseline (4.0 MiB -> 6.0 MiB), more than the 10% allowed*",
        "*vs base*",
        "*1 test(s) not in the baseline (not judged): test_suite.py::test_alloc[[]d[]]*",
    ])
    assert "test_alloc[a]" in "\n".join(line for line in compared.stdout.lines if line.startswith("MEMORY"))


def test_fail_on_increase_without_a_file_compares_with_the_previous_run_in_pytests_cache(pytester):
    write_suite(pytester, {"a": 4 * 2**20, "b": 4 * 2**20})
    first = pytester.runpytest_subprocess("--memprof", "--memprof-fail-on-increase")
    first.assert_outcomes(passed=2)  # nothing to compare with yet
    first.stdout.fnmatch_lines(["*2 test(s) not in the baseline (not judged)*"])
    cached = json.loads((pytester.path / ".pytest_cache" / "v" / "memprof" / "baseline").read_text())
    assert cached["tests"]["test_suite.py::test_alloc[a]"]["peak_bytes"] >= 4 * 2**20

    # a grows: the bare flag fails any growth past the noise floor, as pytest-memray's --fail-on-increase.
    write_suite(pytester, {"a": 6 * 2**20, "b": 4 * 2**20})
    grown = pytester.runpytest_subprocess("--memprof", "--memprof-fail-on-increase")
    grown.assert_outcomes(passed=1, failed=1)
    grown.stdout.fnmatch_lines(["*Peak grew +*% over the previous run (4.0 MiB -> 6.0 MiB), more than the 0% allowed*"])
    # The failed test kept its last passing figures: it fails again until it is fixed.
    again = pytester.runpytest_subprocess("--memprof", "--memprof-fail-on-increase=10%")
    again.assert_outcomes(passed=1, failed=1)
    write_suite(pytester, {"a": 4 * 2**20, "b": 4 * 2**20})
    pytester.runpytest_subprocess("--memprof", "--memprof-fail-on-increase").assert_outcomes(passed=2)


def test_compare_without_failing_only_reports_changes(pytester):
    base = pytester.path / "baseline.json"
    write_suite(pytester, {"a": 4 * 2**20})
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-save-baseline", str(base))
    write_suite(pytester, {"a": 8 * 2**20})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-compare", str(base))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*+9*%*test_suite.py::test_alloc[[]a[]]*"])


@pytest.mark.parametrize("content, message", [
    (None, "no such baseline file"),
    ("{not json", "bad JSON"),
    ('{"schema_version": 1}', "no 'tests' table"),
    ('{"schema_version": 99, "tests": {}}', "schema version 99"),
])
def test_bad_baseline_is_one_clear_usage_error(pytester, content, message):
    base = pytester.path / "baseline.json"
    if content is not None:
        base.write_text(content)
    write_suite(pytester, {"a": 1000})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-compare", str(base))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--memprof-compare*{message}*"])
    assert "Traceback" not in result.stderr.str()


def test_fail_on_increase_needs_a_baseline(pytester):
    write_suite(pytester, {"a": 1000})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-fail-on-increase", "10%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs a baseline*"])
