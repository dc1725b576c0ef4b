"""The pytest plugin through pytester, with the real tracker inside the inner pytest."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_memprof import Capture
from tests.conftest import subprocess_env

pytest_plugins = ["pytester"]

BIG = """
import pytest

def allocate(size):
    return bytearray(size)
"""


def test_limit_memory_fails_with_the_allocating_line_in_the_message(pytester):
    pytester.makepyfile(BIG + """
@pytest.mark.limit_memory("40MB")
def test_too_big():
    data = allocate(50 * 2**20)

@pytest.mark.limit_memory("60MB")
def test_fits():
    data = allocate(50 * 2**20)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*Test used 50.0 MiB at its peak, more than the 40.0 MiB allowed by limit_memory('40MB').*",
        "*#1  50.0 MiB in *",
        "*allocate at test_limit_memory_fails_with_the_allocating_line_in_the_message.py:4",
        "*test_too_big at test_limit_memory_fails_with_the_allocating_line_in_the_message.py:8",
    ])
    result.stdout.fnmatch_lines(["*MEMORY*test_too_big*"])
    assert all(len(line) <= 100 for line in result.stdout.lines if "allocate at" in line)


def test_numpy_allocation_is_limited_too(pytester):
    # Not importorskip: pytester restores sys.modules after the test, and numpy refuses a second
    # import of its C module in one process.
    if importlib.util.find_spec("numpy") is None:
        pytest.skip("numpy is not installed")
    pytester.makepyfile("""
import numpy as np
import pytest

@pytest.mark.limit_memory("50MB")
def test_numpy():
    array = np.ones(10_000_000)

@pytest.mark.limit_memory("100MB")
def test_numpy_fits():
    array = np.ones(10_000_000)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Test used 76.* MiB at its peak*", "*test_numpy at *:6"])


def test_no_leaks_names_the_leaking_line_and_passes_clean_tests(pytester):
    pytester.makepyfile("""
import functools
import pytest

CACHE = []

@pytest.mark.no_leaks
def test_leaks():
    CACHE.append(bytearray(10 * 2**20))

@pytest.mark.no_leaks
def test_clean():
    data = [bytearray(1000) for _ in range(1000)]

@pytest.mark.no_leaks
def test_collectable_cycle():
    node = [bytearray(5 * 2**20)]
    node.append(node)

@functools.lru_cache(maxsize=None)
def table():
    return bytearray(4 * 2**20)

@pytest.mark.no_leaks(warmup=1)
def test_cache_warmed_up():
    table()

def cache_again():
    return table2()

@functools.lru_cache(maxsize=None)
def table2():
    return bytearray(4 * 2**20)

@pytest.mark.no_leaks
def test_cache_without_warmup():
    cache_again()
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*test_leaks MEMORY*", "*test_cache_without_warmup MEMORY*"])
    result.stdout.fnmatch_lines(["*Test leaked 10.0 MiB*", "*Leaking stacks:*", "*test_leaks at *:8"])


def test_threads_started_by_the_test_count_unless_current_thread_only(pytester):
    pytester.makepyfile("""
import threading
import pytest

def in_thread():
    holder = []
    thread = threading.Thread(target=lambda: holder.append(bytearray(30 * 2**20)))
    thread.start()
    thread.join()
    holder.clear()

@pytest.mark.limit_memory("20MB")
def test_thread_counts():
    in_thread()

@pytest.mark.limit_memory("20MB", current_thread_only=True)
def test_thread_ignored():
    in_thread()
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_thread_counts MEMORY*"])


def test_bad_size_string_is_a_collection_error_naming_the_test(pytester):
    pytester.makepyfile("""
import pytest

@pytest.mark.limit_memory("10 XB")
def test_bad():
    pass
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_bad*limit_memory*'10 XB'*unknown unit 'XB'*KB, MB, GB*"])
    assert "Traceback" not in result.stderr.str()


def test_markers_apply_to_classes_and_modules(pytester):
    pytester.makepyfile(test_module="""
import pytest

pytestmark = pytest.mark.limit_memory("1MB")

def test_module_level():
    data = bytearray(2 * 2**20)
""", test_class="""
import pytest

@pytest.mark.limit_memory("1MB")
class TestGroup:
    def test_method(self):
        data = bytearray(2 * 2**20)

    @pytest.mark.limit_memory("3MB")
    def test_own_marker_wins(self):
        data = bytearray(2 * 2**20)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_own_marker_wins PASSED*"])


def test_markers_are_registered(pytester):
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*limit_memory(size*", "*no_leaks(*", "*limit_leaks(size*"])


@pytest.mark.parametrize("ini_file, content", [
    ("pytest.ini", "[pytest]\nmemprof = true\nmemprof_limit = 1MB\n"),
    ("tox.ini", "[pytest]\nmemprof = true\nmemprof_limit = 1MB\n"),
    ("setup.cfg", "[tool:pytest]\nmemprof = true\nmemprof_limit = 1MB\n"),
    ("pyproject.toml", "[tool.pytest.ini_options]\nmemprof = true\nmemprof_limit = '1MB'\n"),
])
def test_ini_options_take_effect(pytester, ini_file, content):
    pytester.makefile(ini_file[ini_file.index("."):], **{ini_file[: ini_file.index(".")]: content})
    pytester.makepyfile("""
def test_unmarked_but_limited():
    data = bytearray(2 * 2**20)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*allowed by --memprof-limit 1.0 MiB*", "*tests by peak memory*"])


def test_command_line_beats_ini(pytester):
    pytester.makeini("[pytest]\nmemprof_limit = 1MB\nmemprof_summary = 0\n")
    pytester.makepyfile("""
def test_two_mib():
    data = bytearray(2 * 2**20)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-limit", "3MB")
    result.assert_outcomes(passed=1)
    assert "tests by peak memory" not in result.stdout.str()  # memprof_summary = 0 from the ini


def test_bad_option_value_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-limit", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memprof-limit: invalid memory size 'lots'*"])


def test_summary_csv_and_junit_properties(pytester):
    pytester.makepyfile(BIG + """
def test_small():
    data = allocate(2**20)

@pytest.mark.limit_memory("5MB")
def test_large():
    data = allocate(4 * 2**20)
""")
    csv_path = pytester.path / "memory.csv"
    junit_path = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-top-n", "1",
                                "--memprof-csv-file", str(csv_path), "--junitxml", str(junit_path))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*memprof: tests by peak memory (top 1)*", "*4.0 MiB*test_large*",
                                 "*2 test(s) tracked*"])
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["function", "memory"]
    assert rows[1][0] == "test_summary_csv_and_junit_properties.py::test_large"
    assert 4 * 2**20 <= int(rows[1][1]) < 5 * 2**20
    assert len(rows) == 2  # --memprof-top-n 1
    cases = {case.get("name"): case for case in ET.parse(junit_path).getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_large"].iter("property")}
    assert int(props["memprof_peak_bytes"]) >= 4 * 2**20
    assert props["memprof_limit_bytes"] == str(5 * 2**20)
    assert "memprof_leaked_bytes" in props and "memprof_allocations" in props
    small = {p.get("name") for p in cases["test_small"].iter("property")}
    assert "memprof_peak_bytes" in small and "memprof_limit_bytes" not in small


def test_failure_text_reaches_junit(pytester):
    pytester.makepyfile(BIG + """
@pytest.mark.limit_memory("1MB")
def test_over():
    data = allocate(3 * 2**20)
""")
    junit_path = pytester.path / "junit.xml"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml", str(junit_path))
    failure = next(ET.parse(junit_path).getroot().iter("failure"))
    assert "allowed by limit_memory('1MB')" in (failure.text or "") + failure.get("message", "")
    assert "allocate at" in failure.text


def test_summary_can_be_turned_off(pytester):
    pytester.makepyfile("def test_a():\n    x = bytearray(1000)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-summary", "0")
    result.assert_outcomes(passed=1)
    assert "tests by peak memory" not in result.stdout.str()


def test_per_test_captures_are_readable(pytester):
    pytester.makepyfile(BIG + """
@pytest.mark.parametrize("size", [1, 2])
def test_sizes(size):
    data = allocate(size * 2**20)

@pytest.mark.limit_memory("1MB")
def test_over():
    data = allocate(3 * 2**20)
""")
    bin_dir = pytester.path / "captures"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-bin-dir", str(bin_dir))
    result.assert_outcomes(passed=2, failed=1)
    files = sorted(path.name for path in bin_dir.iterdir())
    assert len(files) == 3, files
    assert not [name for name in files if name.endswith(".partial")]
    over = Capture.open(next(bin_dir.glob("*test_over*")))
    assert not over.truncated
    assert 3 * 2**20 <= over.peak_bytes < 4 * 2**20
    assert over.peak_stacks()[0].location.function == "allocate"
    # A test's stacks start at the test, as its traceback would: pytest's own frames are dropped.
    assert [frame.function for frame in over.peak_stacks()[0].frames] == ["test_over", "allocate"]
    sized = Capture.open(next(bin_dir.glob("*test_sizes_2*")))
    assert 2 * 2**20 <= sized.peak_bytes < 3 * 2**20


def test_a_big_tests_figures_are_the_same_with_and_without_its_capture_file(pytester):
    # The tracker's thread replays most of a big test's records while it runs; the rest come at
    # its end. Without a capture file only that rest is taken out of the tracker, with one every
    # record is: the figures must not differ, and must hold the records of the start and the end.
    pytester.makepyfile("""
kept = []

def test_big():
    kept.extend(bytearray(1_000) for _ in range(30_000))  # hundreds of KiB of records, many blocks
    kept.append(bytearray(5 * 2**20))  # the last records, after the replayed ones
""")
    figures = {}
    for name, options in (("without", ()), ("with", ("--memprof-bin-dir", "captures"))):
        junit_path = pytester.path / f"{name}.xml"
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--junitxml", str(junit_path),
                                               *options)
        result.assert_outcomes(passed=1)
        case = next(ET.parse(junit_path).getroot().iter("testcase"))
        figures[name] = {p.get("name"): int(p.get("value")) for p in case.iter("property")
                         if p.get("name") in ("memprof_leaked_bytes", "memprof_allocations", "memprof_peak_bytes")}
    for name, values in figures.items():
        assert 30_000 * 1_000 + 5 * 2**20 <= values["memprof_leaked_bytes"] < 30_000 * 1_100 + 5 * 2**20 + 2**20, name
        assert 60_001 <= values["memprof_allocations"] < 100_000, name  # an object and its buffer each
    for figure in ("memprof_leaked_bytes", "memprof_allocations"):
        assert abs(figures["with"][figure] - figures["without"][figure]) <= 0.001 * figures["with"][figure], figure
    capture = Capture.open(next((pytester.path / "captures").iterdir()))
    assert capture.leaked_bytes == figures["with"]["memprof_leaked_bytes"]


def test_keep_failed_keeps_only_failing_captures(pytester):
    pytester.makepyfile(BIG + """
def test_ok():
    data = allocate(2**20)

@pytest.mark.limit_memory("1MB")
def test_over():
    data = allocate(3 * 2**20)
""")
    bin_dir = pytester.path / "captures"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "--memprof-bin-dir", str(bin_dir),
                       "--memprof-keep", "failed")
    kept = [path.name for path in bin_dir.iterdir()]
    assert kept == ["test_keep_failed_keeps_only_failing_captures.py_test_over.bin"]


def test_long_node_ids_make_short_file_names():
    from pytest_memprof.plugin.core import capture_file_name

    name = capture_file_name("tests/test_x.py::test_y[" + "a" * 500 + "]")
    other = capture_file_name("tests/test_x.py::test_y[" + "a" * 499 + "b]")
    assert len(name) < 140 and name != other and name.endswith(".bin")


def test_nothing_is_tracked_without_memprof_or_markers(pytester):
    pytester.makepyfile("""
from pytest_memprof import _tracker

def test_untracked():
    assert not _tracker.is_active()
""")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("flags", [["--no-memprof"], ["-p", "no:memprof"]])
def test_off_switches_leave_the_allocation_path_alone(pytester, flags):
    pytester.makepyfile("""
import ctypes
import pytest

@pytest.mark.limit_memory("1KB")
def test_marked_but_off():
    data = bytearray(2**20)
    import pytest_memprof._tracker as tracker
    assert not tracker.is_active()
""")
    # pytest-memray (in the test extras) enforces limit_memory when we are off: it is not under test here.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:memray", *flags)
    result.assert_outcomes(passed=1)


def test_result_hook_stash_and_gc_figures(pytester):
    pytester.makeconftest("""
import pytest
SEEN = []

def pytest_memprof_test_result(item, result):
    SEEN.append((item.name, result.peak_bytes, result.gc_collections, result.gc_freed_bytes))

def pytest_sessionfinish(session):
    for name, peak, collections, freed in SEEN:
        print(f"SEEN {name} {peak} {collections} {freed}")
""")
    pytester.makepyfile("""
import gc

def test_with_gc():
    for _ in range(3):
        node = [bytearray(2**20)]
        node.append(node)
        del node
        gc.collect()
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", "-s")
    result.assert_outcomes(passed=1)
    line = next(line for line in result.stdout.lines if "SEEN" in line)
    _, name, peak, collections, freed = line[line.index("SEEN"):].split()
    assert name == "test_with_gc"
    assert int(peak) >= 2**20
    assert int(collections) >= 3
    assert int(freed) >= 3 * 2**20


def test_fixtures_are_tracked_with_memprof_fixtures(pytester):
    pytester.makepyfile("""
import pytest

@pytest.fixture
def big():
    return bytearray(8 * 2**20)

@pytest.mark.limit_memory("4MB")
def test_uses_fixture(big):
    pass
""")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-fixtures")
    result.assert_outcomes(passed=1, errors=1)  # judged after teardown: a teardown error
    result.stdout.fnmatch_lines(["*big at *"])


def test_async_tests_are_tracked(pytester):
    if importlib.util.find_spec("anyio") is None:
        pytest.skip("anyio is not installed")
    pytester.makepyfile("""
import pytest

@pytest.mark.anyio
@pytest.mark.limit_memory("10MB")
async def test_async_big():
    data = bytearray(20 * 2**20)

@pytest.fixture
def anyio_backend():
    return "asyncio"
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_async_big at *"])


def test_xdist_gives_the_same_verdicts_and_a_merged_summary(pytester):
    if importlib.util.find_spec("xdist") is None:
        pytest.skip("pytest-xdist is not installed")
    pytester.makepyfile(BIG + """
@pytest.mark.parametrize("size", range(6))
@pytest.mark.limit_memory("3.5MB")
def test_sizes(size):
    data = allocate(size * 2**20)
""")
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0")
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    serial.assert_outcomes(passed=4, failed=2)
    parallel.assert_outcomes(passed=4, failed=2)
    parallel.stdout.fnmatch_lines(["*memprof: tests by peak memory*", "*6 test(s) tracked*"])
    assert "allocate at" in parallel.stdout.str()


def test_under_xdist_stacks_start_at_the_test_as_they_do_serially(pytester):
    # A worker runs tests under execnet's bootstrap (a <string> module) and xdist's loop: neither
    # belongs in a failure message or in a test's capture, any more than pytest's own frames.
    if importlib.util.find_spec("xdist") is None:
        pytest.skip("pytest-xdist is not installed")
    pytester.makepyfile(BIG + """
@pytest.mark.limit_memory("1MB")
def test_big():
    data = allocate(2 * 2**20)
""")
    bins = pytester.path / "bins"
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1", "--memprof-bin-dir", str(bins))
    parallel.assert_outcomes(failed=1)
    message = parallel.stdout.str()
    assert "allocate at" in message and "test_big at" in message
    stacks = message.split("Largest stacks at the peak:")[1].split("memprof: tests by peak")[0]
    for noise in ("/execnet/", "/xdist/", "<string>", "/_pytest/", "/pluggy/"):
        assert noise not in stacks, noise
    [path] = bins.glob("*.bin")
    top = Capture.open(path).peak_stacks()[0]
    assert [frame.function for frame in top.frames] == ["test_big", "allocate"]


def test_failure_messages_under_the_pytest_script_show_no_launcher_frames(pytester):
    # Under the console script (not python -m pytest), pytest's own work in the window listed
    # "<module> at .../bin/pytest:6" as a stack of the test.
    pytester.makepyfile(BIG + """
@pytest.mark.limit_memory("1KB")
def test_over():
    data = [allocate(100) for _ in range(100)]

@pytest.mark.no_leaks
def test_leaks():
    global kept
    kept = [allocate(1000) for _ in range(100)]
""")
    script = Path(sys.executable).with_name("pytest")
    if not script.exists():
        pytest.skip("no pytest console script beside this interpreter")
    result = subprocess.run([str(script), "-p", "no:cacheprovider", "-p", "no:memray", "--memprof-stacks", "50",
                             "--memprof-leak-floor", "0"], cwd=pytester.path, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout
    assert "Largest stacks at the peak:" in result.stdout and "Leaking stacks:" in result.stdout
    frames = [line for line in result.stdout.splitlines() if " at /" in line]
    for noise in ("/bin/pytest", "/_pytest/", "/pluggy/", "/pytest_memprof/"):
        assert not [line for line in frames if noise in line], noise


def test_a_collection_error_is_reported_as_usual(pytester):
    pytester.makepyfile(test_broken="import no_such_module_here\n", test_ok="def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ModuleNotFoundError*no_such_module_here*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_the_resident_set_is_read_through_one_descriptor_and_afresh_in_a_forked_child():
    # Each test's RSS at its end is read through a descriptor of /proc/self/statm kept open; a
    # child forked from the session must read its own, not the parent's through the inherited one.
    import mmap
    import os

    from pytest_memprof.plugin.core import _ResidentSet

    resident = _ResidentSet()
    before = resident.bytes()
    # A mapping of its own, whose unmapping surely gives its pages back (a bytearray may come from
    # the heap where an earlier test in the same worker changed malloc's thresholds).
    block = mmap.mmap(-1, 64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touched: resident
    assert resident.bytes() - before >= 60 * 2**20
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drops the parent's block, reads its own resident set
        block.close()
        os.write(write, str(resident.bytes()).encode())
        os._exit(0)
    os.close(write)
    child = int(os.read(read, 64))
    os.waitpid(pid, 0)
    os.close(read)
    assert 0 < child < resident.bytes() - 30 * 2**20
    block.close()
    resident.close()
    assert resident.bytes() > 0  # opened again
    resident.close()
