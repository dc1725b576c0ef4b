"""With pytest-memray installed beside us, one plugin tracks a session, never both (issue 17.9)."""

from __future__ import annotations

import importlib.util

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytest_memray") is None,
    reason="pytest-memray is not installed (it is in the test extras)",
)

EIGHT_MIB = """
import pytest

@pytest.mark.limit_memory("9MB")
def test_eight_mib():
    data = bytearray(8 * 2**20)
"""

BLOCKED = "memprof: pytest-memray's plugin is blocked for this session (give --memray to use it)"


@pytest.mark.parametrize("flags", [["--memprof"], []], ids=["memprof", "markers-only"])
def test_memray_is_blocked_so_its_buffers_do_not_count_in_our_peaks(pytester, flags):
    # Today pytest-memray's own 16 MiB of buffers land in the 8 MiB test's peak, over its 9 MB limit.
    pytester.makepyfile(EIGHT_MIB)
    result = pytester.runpytest_subprocess("-p", "memray", "-p", "no:cacheprovider", *flags, "--memprof-summary", "0")
    result.assert_outcomes(passed=1)
    assert result.stdout.lines.count(BLOCKED) == 1
    assert "MEMRAY REPORT" not in result.stdout.str() and "PytestConfigWarning" not in result.stdout.str()


def test_memray_and_memprof_both_asked_for_is_a_usage_error(pytester):
    pytester.makepyfile(EIGHT_MIB)
    result = pytester.runpytest_subprocess("-p", "memray", "-p", "no:cacheprovider", "--memray", "--memprof")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memray and --memprof both ask to track memory*choose one"])
    assert "Traceback" not in result.stderr.str()


def test_memray_alone_is_left_to_track_and_we_stand_aside(pytester):
    pytester.makepyfile(EIGHT_MIB)
    result = pytester.runpytest_subprocess("-p", "memray", "-p", "no:cacheprovider", "--memray")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["memprof: off for this session (--memray asked for pytest-memray)", "*MEMRAY REPORT*"])
    assert "tests by peak memory" not in result.stdout.str()
