"""pytest --memprof-no-python-allocators: the system allocator only, stacks walked at each allocation."""

from __future__ import annotations

from pytest_memprof import Capture
from tests.conftest import subprocess_env

pytest_plugins = ["pytester"]

SUITE = """
import pytest

@pytest.mark.limit_memory("10MB")
def test_big_buffer():
    data = bytearray(20 * 2**20)

@pytest.mark.limit_memory("5MB")
def test_many_small_objects():
    kept = [{"n": n} for n in range(200_000)]

@pytest.mark.limit_memory("5MB")
def test_small():
    data = [1, 2, 3]
"""


def test_limits_hold_with_the_system_allocator_only(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-no-python-allocators",
                                           "--memprof-bin-dir", "captures", "--memprof-keep", "all")
    # 200,000 dicts never pass through malloc one by one, but their pymalloc arenas do.
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_big_buffer*", "*Test used 20.0 MiB at its peak*"])
    text = result.stdout.str()
    assert "test_big_buffer at " in text[text.index("Test used 20.0 MiB"):]
    captures = {path.name: Capture.open(path) for path in (pytester.path / "captures").glob("*.bin")}
    assert len(captures) == 3, sorted(captures)
    assert all(capture.metadata.trace_python_allocators is False for capture in captures.values())
    big = next(capture for name, capture in captures.items() if "test_big_buffer" in name)
    assert big.peak_stacks()[0].location.function == "test_big_buffer"


def test_the_ini_file_turns_it_on_too(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    pytester.makepyfile(SUITE)
    pytester.makeini("[pytest]\nmemprof_no_python_allocators = true\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-bin-dir", "captures")
    result.assert_outcomes(passed=1, failed=2)
    capture = Capture.open(next((pytester.path / "captures").glob("*test_small*.bin")))
    assert capture.metadata.trace_python_allocators is False
