"""The C++ merge of hybrid stacks (native/hybrid_locate.cc) gives exactly the former Python merge's stacks."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest
from pytest_memprof._reader import HYBRID_STACK

from pytest_memprof import Capture, Tracker
from tests.conftest import subprocess_env
from tests.hybrid_oracle import oracle_stacks
from tests.native_lib import CALLBACK, build_cpp, load_cpp

# Whole stacks, stacks cut at the unwinder's 128 frames (a recursion through C), a thread's own
# start-up, eval loops entered that run no frame yet (an import), and the launcher's frames.
PROGRAM = """
import threading

def deep(n):
    if n == 0:
        return [bytearray(200 + i) for i in range(20)]
    return list(map(deep, [n - 1]))[0]

def in_thread(out):
    out.append([str(i) * 4 for i in range(100)])

import json, decimal
kept = [deep(80), deep(5)]
done = []
thread = threading.Thread(target=in_thread, args=(done,))
thread.start()
thread.join()
try:
    import numpy
    kept.append(numpy.ones((300, 300)))
except ImportError:
    pass
"""


def assert_merged_as_before(capture_path, show_interpreter_frames: bool) -> list:
    """Every hybrid stack of the capture, from the C++ merge, equals the Python reference's."""
    expected = oracle_stacks(Capture.open(capture_path, show_interpreter_frames=show_interpreter_frames))
    capture = Capture.open(capture_path, show_interpreter_frames=show_interpreter_frames)
    assert capture._stacks_of([index | HYBRID_STACK for index in range(len(expected))]) == expected  # one batch
    # One at a time (the per-stack path) as in a batch.
    fresh = Capture.open(capture_path, show_interpreter_frames=show_interpreter_frames)
    assert [fresh.stack(index | HYBRID_STACK) for index in range(0, len(expected), 7)] == expected[::7]
    return expected


@pytest.fixture(scope="module")
def run_capture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("merge")
    (folder / "program.py").write_text(PROGRAM)
    subprocess.run([sys.executable, "-m", "pytest_memprof", "run", "-q", "--native", "-o", "run.bin", "program.py"],
                   check=True, env=subprocess_env(), cwd=folder)
    return folder / "run.bin"


@pytest.mark.parametrize("show_interpreter_frames", [False, True])
def test_stacks_under_memprof_run_merge_as_before(run_capture, show_interpreter_frames):
    stacks = assert_merged_as_before(run_capture, show_interpreter_frames)
    reader = Capture.open(run_capture)._reader
    native_nodes = reader.native_nodes()
    depth = [0]
    for parent, *_ in native_nodes:
        depth.append(depth[parent] + 1)
    assert max(depth[native] for _, native in reader.stack_pairs()) >= 128  # some stacks were cut
    # The launcher's own work shows no frame (only the interpreter's, when they show).
    assert any(not stack for stack in stacks) != show_interpreter_frames
    assert any(frame.function == "deep" for stack in stacks for frame in stack)
    assert any(frame.function == "in_thread" for stack in stacks for frame in stack)


@pytest.mark.parametrize("show_interpreter_frames", [False, True])
def test_python_called_back_from_c_merges_as_before(tmp_path, show_interpreter_frames):
    cpplib = load_cpp(build_cpp(tmp_path))
    out = tmp_path / "callback.bin"
    kept = []

    def called_from_c():
        raw = ctypes.c_void_p()
        kept.append((cpplib.memprof_test_entry(1000, ctypes.byref(raw)), raw))
        kept.append([bytearray(64) for _ in range(10)])

    with Tracker(out, native=True):
        cpplib.memprof_test_call(CALLBACK(called_from_c))
        cpplib.memprof_test_call(CALLBACK(lambda: kept.append(str(len(kept)) * 100)))
    for item in kept:
        if isinstance(item, tuple):
            cpplib.memprof_test_release(*item)
    stacks = assert_merged_as_before(out, show_interpreter_frames)
    assert any(frame.function == "memprof_test_call" for stack in stacks for frame in stack)
