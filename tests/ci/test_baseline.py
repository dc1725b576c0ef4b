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
        "*Peak grew +[45]?.?% over the baseline (4.0 MiB -> 6.0 MiB), more than the 10% allowed*",
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


GROWING_SUITE = """
def grows():
    return bytearray({grows})


def steady():
    return bytearray(2_000_000)


def test_grows():
    kept = [grows(), steady()]


def test_steady():
    kept = [steady()]
"""


def test_a_test_that_grew_names_the_location_that_grew_in_every_output(pytester, monkeypatch):
    base = pytester.path / "baseline.json"
    pytester.makepyfile(test_suite=GROWING_SUITE.format(grows="1_000_000"))
    saved = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-save-baseline", str(base))
    saved.assert_outcomes(passed=2)
    tests = json.loads(base.read_text())["tests"]
    for entry in tests.values():
        assert len(json.dumps(entry["locations"], separators=(",", ":"))) <= 2048
    summary = tests["test_suite.py::test_grows"]["locations"]
    names = [summary["frames"][ids[-1]][0] for _, _, ids in summary["peak"]]
    assert names[:2] == ["steady", "grows"] and "test_suite.py" in summary["files"]

    # A line added above grows too: it still matches its baseline location.
    pytester.makepyfile(test_suite="# an unrelated edit\n" + GROWING_SUITE.format(grows="3_000_000"))
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)
    step_summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    junit = pytester.path / "junit.xml"
    compared = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-compare", str(base),
                                             "--memprof-fail-on-increase", "10%", f"--junitxml={junit}",
                                             "--memprof-html", "report")
    compared.assert_outcomes(passed=1, failed=1)
    source = (pytester.path / "test_suite.py").read_text().splitlines()
    grown_line = f"grows at test_suite.py:{source.index('    return bytearray(3_000_000)') + 1}"
    compared.stdout.fnmatch_lines([
        f"*Peak grew * Grew most: {grown_line} (+1.9 MiB at the peak).*",
        "*Locations that grew most since the baseline (at the peak):*",
        "*#1  +1.9 MiB (976.? KiB -> 2.9 MiB)*",  # the bytearray object's own size varies by version
        f"*{grown_line}*",
        "*test_grows at test_suite.py:*",
    ])
    annotation = next(line for line in compared.stdout.lines if line.startswith("::error "))
    assert "test_grows" in annotation and f"Grew most: {grown_line}" in annotation
    lines = compared.stdout.lines
    block = lines[lines.index("Locations that grew most since the baseline (at the peak):"):][:5]
    assert grown_line in block[2] and "test_grows at" in block[3], block  # steady did not grow: not listed
    assert not block[4].startswith("  #2"), block
    assert f"Grew most: {grown_line}" in junit.read_text()
    assert f"Grew most: {grown_line}" in step_summary.read_text()

    # The HTML report: a "what grew" page for the test that grew (none for the steady one).
    index = (pytester.path / "report" / "index.html").read_text()
    assert index.count(">what grew</a>") == 1
    grew_pages = list((pytester.path / "report" / "flamegraphs").glob("*.grew.html"))
    assert len(grew_pages) == 1 and "test_grows" in grew_pages[0].name
    html = grew_pages[0].read_text()
    assert '"base_samples"' in html and "What grew: test_suite.py::test_grows" in html


def test_fail_on_increase_against_the_cache_names_the_location_that_grew(pytester):
    # No baseline file: the previous run in pytest's cache keeps each test's locations too.
    pytester.makepyfile(test_suite=GROWING_SUITE.format(grows="1_000_000"))
    pytester.runpytest_subprocess("--memprof", "--memprof-fail-on-increase").assert_outcomes(passed=2)
    cached = json.loads((pytester.path / ".pytest_cache" / "v" / "memprof" / "baseline").read_text())
    assert cached["tests"]["test_suite.py::test_grows"]["locations"]["peak"]

    pytester.makepyfile(test_suite=GROWING_SUITE.format(grows="3_000_000"))
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)
    grown = pytester.runpytest_subprocess("--memprof", "--memprof-fail-on-increase=10%")
    grown.assert_outcomes(passed=1, failed=1)
    source = (pytester.path / "test_suite.py").read_text().splitlines()
    grown_line = f"grows at test_suite.py:{source.index('    return bytearray(3_000_000)') + 1}"
    grown.stdout.fnmatch_lines([
        f"*Peak grew * over the previous run * Grew most: {grown_line} (+1.9 MiB at the peak).*",
    ])
