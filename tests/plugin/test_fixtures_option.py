"""``--memprof-fixtures`` with every marker: the tests after a marked one stay tracked (issue 18.6)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

REPORT_PEAKS = """
SEEN = []

def pytest_memprof_test_result(item, result):
    SEEN.append((item.name, result.peak_bytes))

def pytest_sessionfinish(session):
    for name, peak in SEEN:
        print(f"SEEN {name} {peak}")
"""

SUITE = """
import pytest

@pytest.fixture
def twenty_mib():
    data = bytearray(20 * 2**20)
    yield data

@pytest.mark.{marker}
def test_marked(twenty_mib):
    pass

@pytest.mark.limit_memory("10MB")
def test_after_allocates_twelve_mib():
    data = bytearray(12 * 2**20)

def test_after_uses_the_fixture(twenty_mib):
    pass
"""

MARKERS = [
    "limit_memory('50MB')",
    "no_leaks",
    "no_leaks(warmup=1)",
    "no_leaks(warmup=2)",
    "limit_leaks('1MB')",
    "limit_memory('50MB', current_thread_only=True)",
    "no_leaks(warmup=1, current_thread_only=True)",
]


@pytest.mark.parametrize("marker", MARKERS)
def test_every_marker_with_memprof_fixtures_leaves_later_tests_tracked(pytester, marker):
    pytester.makeconftest(REPORT_PEAKS)
    pytester.makepyfile(SUITE.replace("{marker}", marker))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-s", "--memprof", "--memprof-fixtures"
    )
    result.stdout.fnmatch_lines(["*Test used 12.0 MiB at its peak, more than the 10.0 MiB allowed*"])
    peaks = {}
    for line in result.stdout.lines:
        if "SEEN " in line:
            _, name, peak = line[line.index("SEEN ") :].split()
            peaks[name] = int(peak)
    if "warmup" not in marker:
        assert peaks["test_marked"] >= 20 * 2**20, peaks  # the fixture's setup is in the window
    else:
        # The window restarts after the warm-up runs: the last run and the teardown, not the setup.
        assert peaks["test_marked"] < 20 * 2**20, peaks
    assert peaks["test_after_allocates_twelve_mib"] >= 12 * 2**20, peaks
    assert peaks["test_after_uses_the_fixture"] >= 20 * 2**20, peaks
    # The verdict comes after teardown (an error there); the fixture's value is not a leak of the test.
    result.stdout.fnmatch_lines(["MEMORY *::test_after_allocates_twelve_mib*"])
    assert "Test leaked 20" not in result.stdout.str()
