"""A pytest-memray suite, unchanged, under real pytest-memray and under ``--memprof``: the same outcomes.

docs/migrating-from-pytest-memray.md lists the markers and options compared here.
"""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import threading

import pytest

KEPT = []
GROWING = {growing}


def allocate(size):
    return bytearray(size)


def leak(size):
    KEPT.append(bytearray(size))


def leak_a():
    leak(600 * 1024)


def leak_b():
    leak(600 * 1024)


def leak_c():
    leak(600 * 1024)


@pytest.mark.limit_memory("1MB")
def test_limit_memory_broken():
    data = allocate(4 * 1024 * 1024)


@pytest.mark.limit_memory("10MB")
def test_limit_memory_kept():
    data = allocate(4 * 1024 * 1024)


def in_thread(out):
    out.append(allocate(4 * 1024 * 1024))


@pytest.mark.limit_memory("1MB")
def test_limit_memory_counts_other_threads():
    out = []
    thread = threading.Thread(target=in_thread, args=(out,))
    thread.start()
    thread.join()


@pytest.mark.limit_memory("1MB", current_thread_only=True)
def test_limit_memory_current_thread_only():
    out = []
    thread = threading.Thread(target=in_thread, args=(out,))
    thread.start()
    thread.join()


@pytest.mark.limit_leaks("1MB")
def test_limit_leaks_three_small_places():
    leak_a()
    leak_b()
    leak_c()


@pytest.mark.limit_leaks("1MB")
def test_limit_leaks_one_big_place():
    leak(2 * 1024 * 1024)


def not_from_leak(stack):
    return not any(frame.function == "leak" and frame.filename.endswith(".py") and frame.lineno > 0
                   for frame in stack.frames)


@pytest.mark.limit_leaks("1MB", filter_fn=not_from_leak)
def test_limit_leaks_filtered_out():
    leak(2 * 1024 * 1024)


def leak_called_by_the_test(stack):
    # Most recent call first in both (pytest-memray's also hold C frames: it records native stacks
    # for limit_leaks).
    names = [frame.function for frame in stack.frames]
    return "leak" in names and names.index("leak") < names.index("test_limit_leaks_filter_keeps_it")


@pytest.mark.limit_leaks("1MB", filter_fn=leak_called_by_the_test)
def test_limit_leaks_filter_keeps_it():
    leak(2 * 1024 * 1024)


@pytest.mark.limit_memory("20MB")
def test_grows_between_runs():
    data = allocate(GROWING)


def test_without_marker():
    data = allocate(4 * 1024 * 1024)
"""

EXPECTED = {
    "test_limit_memory_broken": "failed",
    "test_limit_memory_kept": "passed",
    "test_limit_memory_counts_other_threads": "failed",
    "test_limit_memory_current_thread_only": "passed",
    "test_limit_leaks_three_small_places": "passed",
    "test_limit_leaks_one_big_place": "failed",
    "test_limit_leaks_filtered_out": "passed",
    "test_limit_leaks_filter_keeps_it": "failed",
    "test_grows_between_runs": "passed",
    "test_without_marker": "passed",
}

# The same run asked of each plugin, flag for flag (the table in docs/migrating-from-pytest-memray.md).
PYTEST_MEMRAY = ("-p", "no:memprof", "-p", "memray", "--memray", "--stacks", "3", "--most-allocations", "2")
MEMPROF = ("-p", "no:memray", "--memprof", "--memprof-frames", "3", "--memprof-summary", "2")


def write_suite(pytester, growing: int) -> None:
    pytester.makepyfile(test_suite=SUITE.format(growing=growing))
    # Rewritten within the same second at the same length, the file would pass the cached
    # bytecode's mtime+size check, and the old size would run.
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)


def outcomes(pytester, name: str, *args: str) -> dict[str, str]:
    """Each test's outcome in a run, read from its JUnit XML."""
    xml = pytester.path / f"{name}.xml"
    result = pytester.runpytest_subprocess(*args, f"--junitxml={xml}")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    found = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        found[case.get("name")] = "failed" if failed else "passed"
    return found


def test_a_pytest_memray_suite_has_the_same_outcomes_under_memprof(pytester):
    write_suite(pytester, 4 * 1024 * 1024)
    theirs = outcomes(pytester, "memray", *PYTEST_MEMRAY)
    ours = outcomes(pytester, "memprof", *MEMPROF)
    assert theirs == EXPECTED  # the suite means what we think it means under pytest-memray
    assert ours == theirs

    # pytest-memray's --fail-on-increase and ours, each against the last run kept in pytest's cache.
    write_suite(pytester, 8 * 1024 * 1024)
    grown = {**EXPECTED, "test_grows_between_runs": "failed"}
    theirs = outcomes(pytester, "memray-grown", *PYTEST_MEMRAY, "--fail-on-increase")
    ours = outcomes(pytester, "memprof-grown", *MEMPROF, "--memprof-fail-on-increase")
    assert theirs == grown
    assert ours == theirs


def test_the_other_options_in_the_table_mean_the_same(pytester):
    write_suite(pytester, 4 * 1024 * 1024)
    theirs_dir, ours_dir = pytester.path / "memray-bin", pytester.path / "memprof-bin"
    theirs = outcomes(
        pytester,
        "memray",
        "-p",
        "no:memprof",
        "-p",
        "memray",
        "--memray",
        "--native",
        "--trace-python-allocators",
        "--memray-bin-path",
        str(theirs_dir),
        "--hide-memray-summary",
    )
    ours = outcomes(
        pytester,
        "memprof",
        "-p",
        "no:memray",
        "--memprof",
        "--memprof-native",
        "--memprof-bin-dir",
        str(ours_dir),
        "--memprof-summary",
        "0",
    )
    assert theirs == EXPECTED
    assert ours == theirs
    # One capture per test in the folder asked for, in both.
    assert len(list(theirs_dir.glob("*.bin"))) == len(EXPECTED)
    assert len(list(ours_dir.glob("*.bin"))) == len(EXPECTED)


OBJECTS = """
import pytest

KEPT = []


class Widget:
    pass


@pytest.mark.limit_leaked_objects
def test_keeps_a_widget():
    KEPT.append(Widget())


@pytest.mark.limit_leaked_objects
def test_clean():
    widgets = [Widget() for _ in range(10)]
    del widgets


@pytest.mark.limit_leaked_objects(filter_fn=lambda obj: not isinstance(obj, Widget))
def test_keeps_a_widget_filtered_out():
    KEPT.append(Widget())
"""


@pytest.mark.skipif(sys.version_info < (3, 13, 3), reason="object lifetimes are tracked on CPython 3.13.3+")
def test_limit_leaked_objects_has_the_same_outcomes_under_memprof(pytester):
    pytester.makepyfile(test_objects=OBJECTS)
    theirs = outcomes(pytester, "memray", *PYTEST_MEMRAY)
    ours = outcomes(pytester, "memprof", *MEMPROF)
    assert theirs == {
        "test_keeps_a_widget": "failed",
        "test_clean": "passed",
        "test_keeps_a_widget_filtered_out": "passed",
    }
    assert ours == theirs


@pytest.mark.skipif(sys.version_info >= (3, 13, 3), reason="CPython 3.13.3+ tracks object lifetimes")
def test_limit_leaked_objects_is_refused_where_cpython_cannot_track_objects(pytester):
    pytester.makepyfile("""
import pytest

@pytest.mark.limit_leaked_objects()
def test_objects():
    pass
""")
    theirs = pytester.runpytest_subprocess(*PYTEST_MEMRAY)
    ours = pytester.runpytest_subprocess(*MEMPROF)
    assert theirs.ret == ours.ret == pytest.ExitCode.USAGE_ERROR
    ours.stderr.fnmatch_lines(["*limit_leaked_objects*needs CPython 3.13.3 or later*"])
    assert "Traceback" not in ours.stderr.str()
