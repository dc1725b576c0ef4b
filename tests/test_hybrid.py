"""Hybrid stacks (``--native``) read outermost to innermost: each Python frame at the eval loop that runs it."""

from __future__ import annotations

import ctypes
import json
import subprocess
from pathlib import Path

import pytest

from pytest_memprof import Capture, Tracker
from pytest_memprof.reports.flamegraph import flamegraph_data
from tests.cli.conftest import memprof_command
from tests.conftest import subprocess_env
from tests.native_lib import CALLBACK, build_cpp, load_cpp

numpy = pytest.importorskip("numpy", reason="numpy is not installed")

NUMPY_PROGRAM = """
import numpy as np


def main():
    a = np.ones((2000, 2000))
    a.sum()
    return a


kept = main()
"""


@pytest.fixture(scope="module")
def cpplib(tmp_path_factory):
    return load_cpp(build_cpp(tmp_path_factory.mktemp("native_cpp")))


def described(frames) -> str:
    return " > ".join(("C " if frame.native else "Py ") + frame.function for frame in frames)


def assert_called_from_main(frames) -> None:
    """Every frame from numpy's C code on comes after (inside) the program's <module> and main."""
    functions = [frame.function for frame in frames]
    first_numpy = next(index for index, frame in enumerate(frames) if frame.native and "numpy" in frame.file)
    assert "<module>" in functions[:first_numpy] and "main" in functions[:first_numpy], described(frames)
    assert functions.index("<module>") < functions.index("main") < first_numpy, described(frames)


@pytest.fixture(scope="module")
def numpy_capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hybrid")
    (folder / "reduce.py").write_text(NUMPY_PROGRAM)
    result = subprocess.run(
        [*memprof_command(), "run", "-q", "--native", "-o", "reduce.bin", "reduce.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return folder / "reduce.bin"


def test_a_numpy_reduction_is_under_the_python_frames_that_called_it(numpy_capture):
    capture = Capture.open(numpy_capture)
    reductions = [stat for stat in capture.total_stacks() if any(f.function == "array_sum" for f in stat.frames)]
    assert reductions, "no allocation under array_sum"
    for stat in reductions:
        assert_called_from_main(stat.frames)
    # The array itself, at the peak: np.ones called from main. (OpenBLAS's own threads may hold a
    # buffer as big at the peak: 32 MiB with numpy 2.0.2 on 3.9; it is not the array.)
    (array,) = [stat for stat in capture.peak_stacks()
                if stat.bytes == 2000 * 2000 * 8 and stat.frames and stat.frames[0].function == "<module>"]
    assert_called_from_main(array.frames)


def test_the_innermost_frame_of_a_numpy_stack_is_its_last(numpy_capture):
    capture = Capture.open(numpy_capture)
    stacks = {stat.frames[-1] if stat.frames else None for stat in capture.total_stacks()}
    locations = {frame for frame, _, _ in capture.location_totals()}
    assert locations == stacks


def test_the_flame_graph_and_tree_show_the_same_order(numpy_capture):
    capture = Capture.open(numpy_capture)
    data = flamegraph_data(capture, kind="temporary")
    strings, frames, nodes = data["strings"], data["frames"], data["nodes"]

    def path(node):
        out = []
        while node:
            parent, frame = nodes[2 * (node - 1)], nodes[2 * (node - 1) + 1]
            out.append(strings[frames[4 * frame]])
            node = parent
        return out[::-1]

    for node in data["samples"][0::4]:
        functions = path(node)
        if "array_sum" in functions:
            assert functions.index("main") < functions.index("array_sum"), functions
    result = subprocess.run(
        [*memprof_command(), "tree", "--temporary-allocations", "--biggest-allocs", "1000", str(numpy_capture)],
        capture_output=True,
        text=True,
        env=subprocess_env(COLUMNS="400"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for index, line in enumerate(lines):
        if " array_sum " in line:
            indent = len(line) - len(line.lstrip("│ ├└─"))
            # Walking up the tree from array_sum meets main before the root.
            above = [text for text in lines[:index] if len(text) - len(text.lstrip("│ ├└─")) < indent]
            assert any(" main " in text for text in above), "\n".join(lines[: index + 1])


def test_python_called_back_from_c_is_between_the_c_frames_in_every_stack(tmp_path, cpplib):
    out = tmp_path / "callback.bin"
    kept = []

    def called_from_c():
        # Objects made in the callback: allocations as the loop starts running it, and inside it.
        kept.append(json.loads('{"values": [1, 2, 3], "name": "x"}'))
        raw = ctypes.c_void_p()
        kept.append((cpplib.memprof_test_entry(1000, ctypes.byref(raw)), raw))

    with Tracker(out, native=True):
        cpplib.memprof_test_call(CALLBACK(called_from_c))
    for item in kept:
        if isinstance(item, tuple):
            cpplib.memprof_test_release(*item)
    capture = Capture.open(out)
    seen = 0
    for stat in capture.total_stacks():
        functions = [frame.function.split(".")[-1] for frame in stat.frames]
        if "memprof_test_call" not in functions:
            continue
        seen += 1
        call = functions.index("memprof_test_call")
        test = functions.index("test_python_called_back_from_c_is_between_the_c_frames_in_every_stack")
        assert test < call, described(stat.frames)
        if "called_from_c" in functions:
            assert call < functions.index("called_from_c"), described(stat.frames)
    assert seen
