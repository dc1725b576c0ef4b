"""Hybrid stacks: a native stack whose interpreter eval frames are replaced by the Python frames they ran.

The capture gives, per allocation, the Python stack (each frame flagged when it entered a new C
eval loop rather than being run inline by its caller's loop) and the native stack. Python frames
are cut into runs, one per eval loop (a run starts at each entry frame), and the runs are matched
to the eval frames of the native stack from the innermost out. The two counts differ only when
one stack is incomplete (a native stack cut at its maximum depth loses its outermost frames; a
thread whose Python stack is unknown has none): the innermost frames then still line up, and
leftover Python frames join the outermost eval frame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .model import Frame

# The C function that runs Python frames (a ".cold" part is split off by optimising builds).
_EVAL_FUNCTION = "_PyEval_EvalFrameDefault"
# Process and thread start-up: below main() or a thread's start routine, never interesting.
_STARTUP_FUNCTIONS = frozenset({"_start", "__libc_start_main", "__libc_start_call_main", "__libc_start_main_impl",
                                "start_thread", "clone", "clone3", "__clone", "__clone3"})


@dataclass
class NativeCall:
    """One native frame of a stack, before merging: its function and how to expand it."""

    function: str
    interpreter: bool  # in libpython or the python executable
    expand: Callable[[], tuple[Frame, ...]]  # the frames to show (symbolised lazily: hidden ones never are)

    @property
    def is_eval(self) -> bool:
        """Whether this frame is the interpreter's eval loop."""
        return self.function.startswith(_EVAL_FUNCTION)

    @property
    def is_startup(self) -> bool:
        """Whether this frame is process or thread start-up code."""
        return self.function in _STARTUP_FUNCTIONS


def merge(python: Sequence[tuple[Frame, bool]], native: Sequence[NativeCall], *,
          show_interpreter_frames: bool = False) -> tuple[Frame, ...]:
    """One stack, outermost first: ``python`` is (frame, entered a new eval loop) and ``native`` is outermost first."""
    runs: list[list[Frame]] = []
    for frame, entry in python:
        if entry or not runs:
            runs.append([frame])
        else:
            runs[-1].append(frame)
    evals = [index for index, call in enumerate(native) if call.is_eval]
    placed: dict[int, list[Frame]] = {}
    run = len(runs) - 1
    for index in reversed(evals):
        if run < 0:
            break
        placed[index] = runs[run]
        run -= 1
    leftover = [frame for frames in runs[: run + 1] for frame in frames]
    out: list[Frame] = []
    if leftover:
        if evals:
            placed[evals[0]] = leftover + placed.get(evals[0], [])
        else:
            out.extend(leftover)  # no eval frame unwound (stack cut short): Python frames first
    for index, call in enumerate(native):
        if index in placed:
            if show_interpreter_frames:
                out.extend(call.expand())
            out.extend(placed[index])
        elif show_interpreter_frames or not (call.interpreter or call.is_startup):
            out.extend(call.expand())
    return tuple(out)


def interpreter_paths(executable: str | None) -> Callable[[str], bool]:
    """A test for "this object is the interpreter": libpython, or the python executable that ran."""
    candidates = {os.path.realpath(path) for path in (executable, sys.executable) if path}

    def is_interpreter(path: str) -> bool:
        return os.path.basename(path).startswith("libpython") or os.path.realpath(path) in candidates

    return is_interpreter
