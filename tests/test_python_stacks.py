"""Python stacks, both ways the tracker knows them: the profile callback's shadow stack (Python's
allocators traced) and the walk of the interpreter's own frames (system allocator only)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from pytest_memprof import Capture, Tracker
from tests.native_lib import build, load


@pytest.fixture(scope="module")
def testlib(tmp_path_factory):
    return load(build(tmp_path_factory.mktemp("native")))


class Holder:
    def __init__(self, lib, size):
        self.pointer = lib.alloc_malloc(size)

    @property
    def more(self):
        return self.pointer


def generator(lib, size):
    yield lib.alloc_malloc(size)


async def coroutine(lib, size):
    return lib.alloc_malloc(size)


def in_except_block(lib, size):
    try:
        raise KeyError(size)
    except KeyError:
        return lib.alloc_malloc(size)


def nested(lib, size, depth):
    if depth == 0:
        return lib.alloc_malloc(size)
    return nested(lib, size, depth - 1)


def every_shape(lib) -> list:
    """One allocation of a size of its own from each way Python reaches C."""
    pointers = [lib.alloc_malloc(100_001)]
    pointers += sorted([lib.alloc_malloc(100_002)], key=lambda p: lib.alloc_malloc(100_003) or p)  # called by C
    pointers.append(Holder(lib, 100_004).pointer)
    pointers += list(generator(lib, 100_005))
    runner = coroutine(lib, 100_006)
    try:
        runner.send(None)
    except StopIteration as done:
        pointers.append(done.value)
    pointers.append(in_except_block(lib, 100_007))
    pointers.append(nested(lib, 100_008, 30))
    pointers += [lib.alloc_malloc(100_009) for _ in range(2)]
    return pointers


SIZES = range(100_001, 100_010)


def stacks_by_size(capture: Capture) -> dict:
    found = {}
    for stat in capture.total_stacks(merge_allocators=False):
        if stat.allocator == "malloc" and stat.bytes // stat.count in SIZES:
            found[stat.bytes // stat.count] = [(f.function, f.file, f.line) for f in stat.frames]
    return found


def test_walked_stacks_are_the_profiled_stacks(tmp_path, testlib):
    captures = {}
    for traced in (True, False):
        out = tmp_path / f"{traced}.bin"
        with Tracker(out, trace_python_allocators=traced):
            pointers = every_shape(testlib)
        for pointer in pointers:
            testlib.release(pointer)
        captures[traced] = stacks_by_size(Capture.open(out))
    assert sorted(captures[False]) == list(SIZES)
    assert captures[False] == captures[True]
    innermost = {size: stack[-1][0].split(".")[-1] for size, stack in captures[False].items()}
    assert innermost[100_003] == "<lambda>"
    assert innermost[100_004] == "__init__"
    assert innermost[100_005] == "generator"
    assert innermost[100_006] == "coroutine"
    assert innermost[100_007] == "in_except_block"
    assert [frame[0] for frame in captures[False][100_008]].count("nested") == 31
    listcomp = "every_shape" if sys.version_info >= (3, 12) else "<listcomp>"  # 3.12 inlines comprehensions
    assert captures[False][100_009][-1][0].split(".")[-1] == listcomp


def two_sites(lib, first, second):
    a = lib.alloc_malloc(first)  # site: first
    b = lib.alloc_malloc(second)  # site: second
    return a, b


def call_site_one(lib):
    return two_sites(lib, 300_011, 300_012)  # site: one


def call_site_two(lib):
    return two_sites(lib, 300_021, 300_022)  # site: two


def _site_lines() -> dict:
    with open(__file__, encoding="utf-8") as source:
        return {line.split("# site: ")[1].strip(): number for number, line in enumerate(source, 1)
                if "# site: " in line and "split" not in line}


def test_one_instruction_reached_from_two_callers_keeps_its_line_in_both(tmp_path, testlib, python_allocators):
    # An instruction's line is looked up once and kept: the second caller's stacks, new nodes all,
    # get it from there, and must read as the source does.
    out = tmp_path / "sites.bin"
    pointers = []
    with Tracker(out, trace_python_allocators=python_allocators):
        for _ in range(3):
            pointers += [*call_site_one(testlib), *call_site_two(testlib), *call_site_one(testlib)]
    for pointer in pointers:
        testlib.release(pointer)
    lines = _site_lines()
    stats = Capture.open(out).leak_stacks(merge_allocators=False)
    found = {stat.bytes // stat.count: [(f.function.split(".")[-1], f.line) for f in stat.frames[-2:]]
             for stat in stats if 300_000 < stat.bytes // stat.count < 300_100}
    assert found == {
        300_011: [("call_site_one", lines["one"]), ("two_sites", lines["first"])],
        300_012: [("call_site_one", lines["one"]), ("two_sites", lines["second"])],
        300_021: [("call_site_two", lines["two"]), ("two_sites", lines["first"])],
        300_022: [("call_site_two", lines["two"]), ("two_sites", lines["second"])],
    }


def recurse_then_allocate(lib, depth):
    if depth == 0:
        return lib.alloc_malloc(123_457)
    return recurse_then_allocate(lib, depth - 1)


def test_a_deep_stack_is_walked_whole(tmp_path, testlib, python_allocators):
    out = tmp_path / "deep.bin"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        with Tracker(out, trace_python_allocators=python_allocators):
            pointer = recurse_then_allocate(testlib, 5_000)
    finally:
        sys.setrecursionlimit(limit)
    testlib.release(pointer)
    stat = next(s for s in Capture.open(out).leak_stacks(merge_allocators=False) if s.bytes == 123_457)
    assert [f.function for f in stat.frames].count("recurse_then_allocate") == 5_001


def test_a_code_object_in_the_place_of_a_freed_one_is_told_apart(tmp_path, testlib, python_allocators):
    # Each compiled function dies before the next is made, so the next often lands at the same
    # address: a walk holds no reference, and must not take it for the one it saw before.
    out = tmp_path / "reused.bin"
    pointers = []
    with Tracker(out, trace_python_allocators=python_allocators):
        for index in range(40):
            source = f"\n\ndef made_{index}(lib):\n    return lib.alloc_malloc({200_000 + index})\n"
            namespace: dict = {}
            exec(compile(source, f"<generated {index}>", "exec"), namespace)
            pointers.append(namespace[f"made_{index}"](testlib))
            namespace.clear()  # the function and its globals are a cycle: break it
    for pointer in pointers:
        testlib.release(pointer)
    by_size = {s.bytes: s.location for s in Capture.open(out).leak_stacks(merge_allocators=False)
               if 200_000 <= s.bytes < 200_040}
    assert sorted(by_size) == list(range(200_000, 200_040))
    for size, location in by_size.items():
        index = size - 200_000
        assert (location.function, location.file, location.line) == (f"made_{index}", f"<generated {index}>", 4)


def test_names_are_utf8_and_a_lone_surrogate_is_replaced(tmp_path, testlib, python_allocators):
    source = "def größe(lib):\n    return lib.alloc_malloc(300_001)\n"
    namespace: dict = {}
    exec(compile(source, "caf\udce9.py", "exec"), namespace)
    out = tmp_path / "names.bin"
    with Tracker(out, trace_python_allocators=python_allocators):
        pointer = namespace["größe"](testlib)
    testlib.release(pointer)
    stat = next(s for s in Capture.open(out).leak_stacks(merge_allocators=False) if s.bytes == 300_001)
    assert (stat.location.function, stat.location.file, stat.location.line) == ("größe", "caf\ufffd.py", 2)


def allocate_under_another_profiler(lib):
    return lib.alloc_malloc(400_001)


def test_stacks_survive_the_programs_own_profiler(tmp_path, testlib, python_allocators):
    # cProfile or a debugger may replace our profile callback, after which the shadow stack is
    # stale: the frames are then walked instead.
    out = tmp_path / "profiled.bin"
    calls = []
    with Tracker(out, trace_python_allocators=python_allocators):
        sys.setprofile(lambda frame, event, arg: calls.append(event))
        try:
            pointer = allocate_under_another_profiler(testlib)
        finally:
            sys.setprofile(None)
    testlib.release(pointer)
    assert "call" in calls
    stat = next(s for s in Capture.open(out).leak_stacks(merge_allocators=False) if s.bytes == 400_001)
    assert stat.location.function == "allocate_under_another_profiler"


def test_a_thread_that_makes_no_python_call_after_the_start_still_has_its_stack(tmp_path, testlib, python_allocators):
    # Blocked in a C call (os.read) when the tracker starts, this thread then calls only C
    # functions: a profile callback never hears from it, so its shadow stack is never built.
    ready = threading.Event()
    read_end, write_end = os.pipe()
    pointers = []

    def allocate_in_c_calls_only():
        ready.set()
        os.read(read_end, 1)
        for _ in range(5):
            pointers.append(testlib.alloc_malloc(500_001))

    thread = threading.Thread(target=allocate_in_c_calls_only)
    thread.start()
    ready.wait()
    out = tmp_path / "early.bin"
    try:
        with Tracker(out, trace_python_allocators=python_allocators):
            os.write(write_end, b"x")
            thread.join()
    finally:
        os.close(read_end)
        os.close(write_end)
    for pointer in pointers:
        testlib.release(pointer)
    stats = [s for s in Capture.open(out).leak_stacks(merge_allocators=False) if s.bytes == 5 * 500_001]
    assert stats and stats[0].location is not None
    assert stats[0].location.function.endswith("allocate_in_c_calls_only")
