"""The interpreter's frames as each CPython version lays them out (native/pyframes.cc), read back
through the tracker every way it knows stacks (sys.monitoring on 3.12+, the profile callback, the
walk), and held against what ``sys._getframe()`` says at the moment of the allocation: the same
functions, files and line numbers, frame for frame."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from pathlib import Path

import pytest

from pytest_memprof import Capture, Tracker, _tracker
from tests.native_lib import CALLBACK, build, load
from tests.reports.conftest import run_memprof

MONITORING = sys.version_info >= (3, 12)


@pytest.fixture(scope="module")
def testlib(tmp_path_factory):
    return load(build(tmp_path_factory.mktemp("native")))


def chain(frame) -> list:
    """(function, file, line) of `frame` and its callers, outermost first, as a capture names them."""
    frames = []
    while frame is not None:
        code = frame.f_code
        name = code.co_qualname if sys.version_info >= (3, 11) else code.co_name
        frames.append((name, code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return frames[::-1]


class Seen:
    """Allocations of distinct sizes, each with the frame chain Python showed as it was made."""

    def __init__(self, lib) -> None:
        self.lib = lib
        self.pointers: list = []
        self.chains: dict = {}

    def allocate(self, size: int) -> None:
        """malloc `size` bytes, noting the frame chain on the allocating line itself."""
        self.chains[size], pointer = chain(sys._getframe()), self.lib.alloc_malloc(size)
        self.pointers.append(pointer)

    def release(self) -> None:
        for pointer in self.pointers:
            self.lib.release(pointer)


@pytest.fixture(params=["sys.monitoring", "frame evaluation", "profile", "walk"])
def stacks_by(request, monkeypatch) -> str:
    """Each way the tracker knows Python stacks: its name as _tracker.python_stacks() gives it."""
    if request.param == "sys.monitoring" and not MONITORING:
        pytest.skip("sys.monitoring is 3.12+")
    if request.param == "frame evaluation" and MONITORING:
        pytest.skip("3.12+ follows calls by sys.monitoring instead of a PEP 523 evaluation function")
    if request.param == "profile":
        monkeypatch.setenv("MEMPROF_CALLS", "profile")
    return request.param


def recorded(tmp_path, stacks_by: str, seen: Seen, body) -> dict:
    """Run `body` under a tracker; {size: recorded frames} for the sizes `seen` noted."""
    out = tmp_path / "frames.bin"
    with Tracker(out, trace_python_allocators=stacks_by != "walk", overwrite=True):
        assert _tracker.python_stacks() == stacks_by
        body()
    seen.release()
    stacks = {}
    for stat in Capture.open(out).leak_stacks(merge_allocators=False):
        if stat.allocator == "malloc" and stat.count == 1 and stat.bytes in seen.chains:
            stacks[stat.bytes] = [(f.function, f.file, f.line) for f in stat.frames]
    return stacks


def assert_same_frames(stacks: dict, seen: Seen) -> None:
    assert sorted(stacks) == sorted(seen.chains)
    for size, expected in seen.chains.items():
        frames = stacks[size]
        # A capture leaves out what launched the program (pytest's own frames here); the rest is
        # Python's chain exactly, down to the innermost frame.
        assert frames, size
        assert frames == expected[-len(frames):], size
        assert expected[-1] in frames


def callers(stack: list, count: int) -> list:
    """The names of the `count` frames that called Seen.allocate, outermost first."""
    assert stack[-1][0] == "Seen.allocate" or stack[-1][0] == "allocate"
    return [frame[0].split(".")[-1] for frame in stack[-1 - count:-1]]


def inner(seen, size):
    seen.allocate(size)


def middle(seen, size):
    inner(seen, size)


def outer(seen, size):
    return middle(seen, size)


def test_frames_in_the_main_thread(tmp_path, testlib, stacks_by):
    seen = Seen(testlib)
    stacks = recorded(tmp_path, stacks_by, seen, lambda: outer(seen, 600_001))
    assert_same_frames(stacks, seen)
    assert callers(stacks[600_001], 3) == ["outer", "middle", "inner"]


def test_frames_in_a_python_thread(tmp_path, testlib, stacks_by):
    seen = Seen(testlib)

    def body():
        thread = threading.Thread(target=outer, args=(seen, 600_002), name="frames")
        thread.start()
        thread.join()

    stacks = recorded(tmp_path, stacks_by, seen, body)
    assert_same_frames(stacks, seen)
    assert stacks[600_002][0][0].endswith("_bootstrap")  # Thread._bootstrap from 3.11 (qualified names)


def test_frames_in_a_native_thread_calling_into_python(tmp_path, testlib, stacks_by):
    # A thread made by C, which Python first hears of when it calls a Python callback: its frames
    # come from a thread state created on the spot.
    seen = Seen(testlib)

    def from_c():
        outer(seen, 600_003)

    callback = CALLBACK(from_c)
    stacks = recorded(tmp_path, stacks_by, seen, lambda: testlib.call_in_native_thread(callback))
    assert_same_frames(stacks, seen)
    assert stacks[600_003] == seen.chains[600_003]  # nothing above the callback to leave out
    assert stacks[600_003][0][0].endswith("from_c")
    assert callers(stacks[600_003], 3) == ["outer", "middle", "inner"]


def produce(seen, first, second):
    seen.allocate(first)
    yield first
    seen.allocate(second)  # resumed: its caller frames are the consumer's again
    yield second


def delegate(seen, first, second):
    yield from produce(seen, first, second)


def consume(seen, first=600_004, second=600_005):
    sizes = []
    for size in delegate(seen, first, second):  # not a comprehension: a frame of its own before 3.12
        sizes.append(size)
    return sizes


def test_frames_in_generators_resumed_by_their_consumer(tmp_path, testlib, stacks_by):
    seen = Seen(testlib)
    stacks = recorded(tmp_path, stacks_by, seen, lambda: consume(seen))
    assert_same_frames(stacks, seen)
    for size in (600_004, 600_005):
        assert callers(stacks[size], 3) == ["consume", "delegate", "produce"]


async def awaited(seen, size, later):
    await asyncio.sleep(0)  # suspended once: resumed by the event loop, not by its caller
    if later:
        await asyncio.sleep(0)
        seen.allocate(size)
    else:
        seen.allocate(size)


async def task_body(seen):
    await asyncio.gather(awaited(seen, 600_006, False), awaited(seen, 600_007, True))


def test_frames_in_coroutines_under_asyncio(tmp_path, testlib, stacks_by):
    seen = Seen(testlib)

    def body():
        # A thread of its own: an earlier test of the session may have left this one's event
        # loop marked as running.
        thread = threading.Thread(target=asyncio.run, args=(task_body(seen),))
        thread.start()
        thread.join()

    stacks = recorded(tmp_path, stacks_by, seen, body)
    assert_same_frames(stacks, seen)
    for size in (600_006, 600_007):
        assert callers(stacks[size], 1) == ["awaited"]


def fail(depth):
    if depth == 0:
        raise ValueError("unwinds through every frame below")
    fail(depth - 1)


def after_an_exception(seen):
    try:
        fail(5)
    except ValueError:
        pass
    seen.allocate(600_008)  # the six frames that unwound are gone from the stack
    try:
        fail(3)
    except ValueError:
        seen.allocate(600_009)


def test_frames_after_an_exception_unwound_through_them(tmp_path, testlib, stacks_by):
    seen = Seen(testlib)
    stacks = recorded(tmp_path, stacks_by, seen, lambda: after_an_exception(seen))
    assert_same_frames(stacks, seen)
    for size in (600_008, 600_009):
        assert "fail" not in [f[0] for f in stacks[size]]


def recurse(seen, depth):
    if depth == 0:
        seen.allocate(600_010)
        return
    recurse(seen, depth - 1)


def test_frames_of_deep_recursion(tmp_path, testlib, stacks_by):
    seen = Seen(testlib)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5_000)
    try:
        stacks = recorded(tmp_path, stacks_by, seen, lambda: recurse(seen, 2_000))
    finally:
        sys.setrecursionlimit(limit)
    assert_same_frames(stacks, seen)
    assert [f[0] for f in stacks[600_010]].count("recurse") == 2_001


def returns_deep(depth):
    return returns_deep(depth - 1) if depth else 0


def yields_twice():
    yield 1
    yield 2


def unwinds():
    raise ValueError("unwound")


def test_frames_that_returned_yielded_or_unwound_are_gone_from_the_next_stack(tmp_path, testlib, stacks_by):
    # sys.monitoring tells of starts and resumes only: the frames a thread's next allocation finds
    # above the live innermost one are those that returned since, and must be gone from its stack,
    # also where a new frame of the same code now stands at a returned one's address.
    seen = Seen(testlib)

    def body():
        returns_deep(20)
        seen.allocate(600_100)
        generator = yields_twice()
        next(generator)
        seen.allocate(600_101)
        try:
            unwinds()
        except ValueError:
            pass
        seen.allocate(600_102)
        inner(seen, 600_103)
        next(generator)
        outer(seen, 600_104)
        returns_deep(5)
        inner(seen, 600_105)

    stacks = recorded(tmp_path, stacks_by, seen, body)
    assert_same_frames(stacks, seen)
    for size in (600_100, 600_101, 600_102):
        names = [frame[0].split(".")[-1] for frame in stacks[size]]
        assert names[-2:] == ["body", "allocate"], (size, names)


@pytest.mark.parametrize("install", [sys.setprofile, sys.settrace], ids=["setprofile", "settrace"])
def test_frames_under_the_programs_own_profiler_or_tracer(tmp_path, testlib, stacks_by, install):
    seen = Seen(testlib)
    events: list = []

    def hook(frame, event, arg):
        events.append(event)
        return hook

    def body():
        install(hook)
        try:
            outer(seen, 600_011)
            consume(seen, 600_012, 600_013)
        finally:
            install(None)

    stacks = recorded(tmp_path, stacks_by, seen, body)
    assert "call" in events
    assert_same_frames(stacks, seen)


@pytest.mark.skipif(MONITORING, reason="3.12+ follows calls by sys.monitoring, not a PEP 523 evaluation function")
def test_frames_under_another_tools_evaluation_function_set_after_ours(tmp_path, testlib):
    # A debugger's PEP 523 function set while ours is: the frames it runs are never seen by ours,
    # and frames ours entered before it go on running in ours. Both kinds hold frame for frame.
    import ctypes

    from tests.native_lib import build_foreign_evaluator

    foreign = ctypes.PyDLL(str(build_foreign_evaluator(tmp_path)))
    foreign.frames_run.restype = ctypes.c_long
    seen = Seen(testlib)

    def entered_by_ours():
        foreign.install()
        try:
            outer(seen, 600_031)  # run by the other tool's function
            consume(seen, 600_032, 600_033)
        finally:
            foreign.remove_it()
        seen.allocate(600_034)  # back in a frame ours entered, its callee's frames gone
        outer(seen, 600_035)

    stacks = recorded(tmp_path, "frame evaluation", seen, entered_by_ours)
    assert foreign.frames_run() >= 3
    assert_same_frames(stacks, seen)
    assert callers(stacks[600_031], 3) == ["outer", "middle", "inner"]
    assert callers(stacks[600_034], 1) == ["entered_by_ours"]


needs_monitoring = pytest.mark.skipif(not MONITORING, reason="sys.monitoring is 3.12+")


@needs_monitoring
def test_sys_monitoring_stacks_beside_the_programs_own_monitoring_tool(tmp_path, testlib):
    # The program's tool (a profiler's id) goes on seeing its events while ours follows calls.
    monitoring = sys.monitoring
    tool = monitoring.PROFILER_ID
    monitoring.use_tool_id(tool, "the program's profiler")
    starts: list = []
    monitoring.register_callback(tool, monitoring.events.PY_START, lambda code, offset: starts.append(code.co_name))
    monitoring.set_events(tool, monitoring.events.PY_START)
    try:
        seen = Seen(testlib)
        stacks = recorded(tmp_path, "sys.monitoring", seen,
                          lambda: (outer(seen, 600_020), consume(seen, 600_021, 600_022)))
        assert monitoring.get_tool(tool) == "the program's profiler"
    finally:
        monitoring.set_events(tool, 0)
        monitoring.register_callback(tool, monitoring.events.PY_START, None)
        monitoring.free_tool_id(tool)
    assert_same_frames(stacks, seen)
    assert "outer" in starts and "produce" in starts


def test_stacks_after_a_pause_are_true_for_calls_made_while_paused(tmp_path, testlib, stacks_by):
    # The pytest plugin pauses between tests and resumes inside pytest's calls: frames entered
    # and left while paused, seen by no callback, must not be on (or missing from) the stacks after.
    seen = Seen(testlib)
    out = tmp_path / "paused.bin"
    with Tracker(out, trace_python_allocators=stacks_by != "walk") as tracker:
        assert _tracker.python_stacks() == stacks_by
        tool = next((tool for tool in (3, 4) if MONITORING and sys.monitoring.get_tool(tool) == "pytest-memprof"), None)
        events = sys.monitoring.get_events(tool) if tool is not None else 0

        def paused_then_resumed(size, first):
            tracker.pause()
            # Our sys.monitoring events stay set while paused, their callbacks doing nothing:
            # setting them off and on per test made the interpreter instrument functions afresh.
            assert tool is None or sys.monitoring.get_events(tool) == events != 0
            middle(seen, size)  # made while paused: not recorded
            tracker.resume()
            if first:  # each from lines of its own: stacks of their own
                seen.allocate(size + 1)
                outer(seen, size + 2)
            else:
                inner(seen, size + 1)
                middle(seen, size + 2)

        for size, first in ((600_040, True), (600_050, False)):  # the second resume follows a first one
            paused_then_resumed(size, first)
            del seen.chains[size]
    assert tool is not None or stacks_by != "sys.monitoring"
    stacks = {stat.bytes: [(f.function, f.file, f.line) for f in stat.frames]
              for stat in Capture.open(out).leak_stacks(merge_allocators=False)
              if stat.allocator == "malloc" and stat.count == 1 and 600_040 <= stat.bytes < 600_060}
    seen.release()
    assert 600_040 not in stacks and 600_050 not in stacks
    assert_same_frames(stacks, seen)
    if MONITORING:  # the tool id is given back at the stop, events and all
        assert sys.monitoring.get_tool(3) is None and sys.monitoring.get_tool(4) is None


@needs_monitoring
def test_the_program_can_claim_the_conventional_tool_ids_while_tracking(tmp_path, testlib):
    # cProfile takes the profiler id and coverage.py the coverage id: tracking must leave them.
    import cProfile

    seen = Seen(testlib)

    def body():
        for tool in (sys.monitoring.DEBUGGER_ID, sys.monitoring.COVERAGE_ID):
            sys.monitoring.use_tool_id(tool, "the program's")
            sys.monitoring.free_tool_id(tool)
        profile = cProfile.Profile()
        profile.runcall(outer, seen, 600_023)

    stacks = recorded(tmp_path, "sys.monitoring", seen, body)
    assert_same_frames(stacks, seen)
    assert sys.monitoring.get_tool(3) is None and sys.monitoring.get_tool(4) is None  # ours is given back


@needs_monitoring
def test_without_a_free_tool_id_the_profile_callback_follows_calls(tmp_path, testlib):
    for tool in (3, 4):
        sys.monitoring.use_tool_id(tool, "the program's")
    try:
        seen = Seen(testlib)
        stacks = recorded(tmp_path, "profile", seen, lambda: consume(seen, 600_024, 600_025))
    finally:
        for tool in (3, 4):
            sys.monitoring.free_tool_id(tool)
    assert_same_frames(stacks, seen)


def test_a_functions_first_call_is_not_charged_for_its_instrumentation(tmp_path, stacks_by):
    # On 3.12+ the interpreter instruments each code object for sys.monitoring (which a profile
    # function runs on too) at its first RESUME, allocating about 128 bytes it keeps: memory the
    # program would not have without the tracker. It showed as a leak at every function's `def`
    # line (sys.monitoring) or at the line that called it (profile), and as a "new" location in
    # every diff.
    source = "".join(f"def f{n}():\n    return None\n\n" for n in range(20))
    namespace: dict = {}
    exec(compile(source, "first_calls.py", "exec"), namespace)
    functions = [namespace[f"f{n}"] for n in range(20)]
    out = tmp_path / "first.bin"
    with Tracker(out, trace_python_allocators=stacks_by != "walk", overwrite=True):
        assert _tracker.python_stacks() == stacks_by
        for function in functions:
            function()
        del function  # before 3.10 the with's __exit__ call is charged to the body's last line
    capture = Capture.open(out)
    assert [stat for stat in capture.total_stacks() if stat.frames and stat.frames[-1].file == "first_calls.py"] == []
    calling_line = next(number for number, line in enumerate(Path(__file__).read_text().splitlines(), 1)
                        if line.strip() == "function()")
    kept_by_caller = [stat for stat in capture.leak_stacks()
                      if stat.frames and (stat.frames[-1].file, stat.frames[-1].line) == (__file__, calling_line)]
    if sys.version_info >= (3, 11) or stacks_by == "walk":
        assert kept_by_caller == []
    else:
        # Up to 3.10 a code object keeps its first frame for reuse (co_zombieframe), tracked or
        # not: the program's own memory, at most one frame object per function (none where the
        # frame came from the interpreter's free list), and nothing beside it.
        assert sum(stat.count for stat in kept_by_caller) <= len(functions), kept_by_caller
        assert len({stat.bytes // stat.count for stat in kept_by_caller}) <= 1, kept_by_caller


def test_calling_a_c_method_in_a_loop_is_charged_nothing(tmp_path, stacks_by):
    # A profile function's C-call event makes the interpreter build a bound method object for each
    # call of a C method (72 bytes, freed at once), which the program alone never allocates. memray
    # follows calls that way up to 3.11 and counts one per call. The frame evaluation function
    # (3.9-3.11) and sys.monitoring (3.12+) see the calls without it.
    if stacks_by == "profile":
        pytest.skip("the profile callback (MEMPROF_CALLS=profile, or no free tool id) has the interpreter make them")
    namespace: dict = {}
    exec(compile("def spin(table, times):\n    for _ in times:\n        table.get(1)\n", "c_calls.py", "exec"),
         namespace)
    out = tmp_path / "c_calls.bin"
    with Tracker(out, trace_python_allocators=stacks_by != "walk", overwrite=True):
        assert _tracker.python_stacks() == stacks_by
        namespace["spin"]({}, itertools.repeat(None, 20_000))
    charged = [stat for stat in Capture.open(out).total_stacks() if any(f.file == "c_calls.py" for f in stat.frames)]
    assert sum(stat.count for stat in charged) < 100, charged


@pytest.mark.skipif(sys.version_info < (3, 11), reason="before 3.11 every Python call recurses in C, tracked or not")
def test_recursion_deeper_than_a_c_stack_holds_runs_with_its_whole_stack(tmp_path):
    # 3.11 runs a call between Python functions inside its loop's C frame, so a program that raises
    # the recursion limit may recurse deeper than the C stack would hold one frame a call. A frame
    # evaluation function costs just that: 20,000 levels crashed the interpreter until a thread
    # nesting too many of ours handed calls over to the profile callback.
    (tmp_path / "deep.py").write_text(
        "import sys\n"
        "from pytest_memprof import _tracker\n"
        "sys.setrecursionlimit(100_000)\n"
        "kept = []\n"
        "def down(n):\n"
        "    if n == 0:\n"
        "        kept.append(bytearray(600_031))\n"
        "        print(_tracker.python_stacks())\n"
        "        return\n"
        "    down(n - 1)\n"
        "down(30_000)\n"
    )
    result = run_memprof("run", "-q", "-o", "deep.bin", "deep.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sys.monitoring" if MONITORING else "profile"]
    [stat] = [stat for stat in Capture.open(tmp_path / "deep.bin").leak_stacks() if stat.bytes >= 600_031]
    assert [frame.function for frame in stat.frames].count("down") == 30_001
