"""The session's outputs: plugin objects of their own, registered only when asked for, fed through our hooks."""

from __future__ import annotations

from pytest_memprof.plugin.verdict import Failure, FailureKind

pytest_plugins = ["pytester"]

LIST_PLUGINS = """
def pytest_unconfigure(config):
    names = sorted(name for name, _ in config.pluginmanager.list_name_plugin() if name.startswith("memprof-"))
    print("MEMPROF PLUGINS " + " ".join(names))
"""


def registered(result) -> list[str]:
    line = next(line for line in result.stdout.lines if line.startswith("MEMPROF PLUGINS"))
    return line.split()[2:]


def test_each_output_is_a_plugin_registered_only_when_its_option_is_on(pytester):
    pytester.makeconftest(LIST_PLUGINS)
    pytester.makepyfile("def test_a():\n    pass\n")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--memprof-github=off",
                                          "--memprof-summary", "0")
    assert registered(plain) == ["memprof-output-log", "memprof-session"]
    every = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--memprof-github=on", "--memprof",
                                          "--memprof-junit", "j.xml", "--memprof-csv-file", "c.csv",
                                          "--memprof-save-baseline", "b.json", "--memprof-html", "report")
    assert registered(every) == ["memprof-baseline", "memprof-csv", "memprof-github", "memprof-html", "memprof-junit",
                                 "memprof-output-log", "memprof-session", "memprof-summary"]


def test_the_html_report_renders_each_test_from_memory(pytester):
    # The page comes from the window's in-memory capture: the capture file just written is not read back.
    pytester.makeconftest("""
from pytest_memprof import capture

def refuse(*args, **kwargs):
    raise AssertionError("a capture file was read back")

capture.Capture.open = refuse
""")
    pytester.makepyfile("def test_a():\n    data = bytearray(2_000_000)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-html", "report")
    result.assert_outcomes(passed=1)
    [page] = (pytester.path / "report" / "flamegraphs").glob("*.html")
    html = page.read_text()
    assert "test_a" in html and 'id="truncated"' not in html  # a closed window is a whole capture


def test_a_verdict_is_figures_until_it_is_shown():
    failure = Failure(FailureKind.PEAK_OVER_LIMIT, 3 << 20, 1 << 20, "limit_memory('1MB')")
    assert failure.about_peak
    assert failure.text() == "Test used 3.0 MiB at its peak, more than the 1.0 MiB allowed by limit_memory('1MB')."
    grew = Failure(FailureKind.PEAK_GREW, 150, 100, percent=10)
    assert grew.about_peak and "+50.0% over the baseline" in grew.text()
    assert not Failure(FailureKind.LEAKED, 1 << 20).about_peak


def test_junit_failure_types_tell_leaks_from_limits_and_xdist_merges_its_cost(pytester):
    pytester.makepyfile("""
import pytest

KEPT = []

@pytest.mark.limit_memory("1MB")
def test_over():
    data = bytearray(3 * 2**20)

@pytest.mark.no_leaks
def test_leaks():
    KEPT.append(bytearray(3 * 2**20))

@pytest.mark.limit_leaks("1MB")
def test_leaks_over():
    KEPT.append(bytearray(3 * 2**20))
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--memprof",
                                           "--memprof-junit", "out/j.xml")
    result.assert_outcomes(failed=3)
    import xml.etree.ElementTree as ET

    types = {case.get("name"): case.find("failure").get("type")
             for case in ET.parse(pytester.path / "out" / "j.xml").getroot().iter("testcase")}
    assert types == {"test_over": "MemoryLimit", "test_leaks": "MemoryLeak", "test_leaks_over": "MemoryLeakLimit"}
    line = next(line for line in result.stdout.lines if "memprof's own work took" in line)
    assert not line.endswith("took 0.00 s"), line  # the workers' cost, not the controller's nothing


def test_junit_and_csv_without_memprof_are_written_into_missing_folders_even_when_nothing_is_tracked(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-junit", "a/j.xml",
                                           "--memprof-csv-file", "b/m.csv", "--memprof-save-baseline", "c/b.json")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert (pytester.path / "a" / "j.xml").read_text().count("<testcase") == 0
    assert (pytester.path / "b" / "m.csv").read_text().splitlines() == ["function,memory"]
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert "else the tests with a memory marker" in " ".join(help_text.split())


def test_memprof_keep_without_a_capture_folder_is_a_usage_error(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-keep", "failed")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--memprof-keep needs --memprof-bin-dir DIR*"])


def test_markers_stay_registered_with_the_plugin_off(pytester):
    pytester.makepyfile("""
import pytest

@pytest.mark.limit_memory("1KB")
@pytest.mark.no_leaks
@pytest.mark.limit_leaks("1KB")
def test_marked():
    data = bytearray(2**20)
""")
    # (-p no:memray: pytest-memray, left alone when we are off, refuses two of its markers on one test)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:memprof", "-p", "no:memray",
                                           "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=1)
    assert "Unknown pytest.mark" not in result.stdout.str()
