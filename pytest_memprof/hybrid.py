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
EVAL_FUNCTION = "_PyEval_EvalFrameDefault"
# Process and thread start-up: below main() or a thread's start routine, never interesting.
_STARTUP_FUNCTIONS = frozenset({"_start", "__libc_start_main", "__libc_start_call_main", "__libc_start_main_impl",
                                "start_thread", "clone", "clone3", "__clone", "__clone3"})


class NativeCall:
    """One native frame of a stack, before merging: its function and how to expand it."""

    __slots__ = ("expand", "function", "interpreter", "is_eval", "is_startup")

    def __init__(self, function: str, interpreter: bool, expand: Callable[[], tuple[Frame, ...]],
                 in_eval_loop: bool = False) -> None:
        self.function = function
        self.interpreter = interpreter  # in libpython or the python executable
        self.expand = expand  # the frames to show (symbolised lazily: hidden ones never are)
        # The interpreter's eval loop: as the tracker told it at run time (EVAL_NATIVE_NODE), or
        # by its name in captures made before it could (format 3) and on Python 3.9.
        self.is_eval = in_eval_loop or function.startswith(EVAL_FUNCTION)
        self.is_startup = function in _STARTUP_FUNCTIONS  # process or thread start-up code

    def visible(self, show_interpreter_frames: bool) -> bool:
        """Whether this frame shows when no Python frames are placed at it."""
        return show_interpreter_frames or not (self.interpreter or self.is_startup)


@dataclass(frozen=True)
class NativeShape:
    """A native stack cut at its eval frames: ``segments[i]`` are the frames shown between eval
    ``i - 1`` and eval ``i`` (outermost first; the last segment is below the innermost eval)."""

    segments: tuple[tuple[Frame, ...], ...] = ((),)
    evals: tuple[NativeCall, ...] = ()

    def extended(self, call: NativeCall, show_interpreter_frames: bool) -> NativeShape:
        """This shape with ``call`` as its new innermost frame."""
        if call.is_eval:
            return NativeShape((*self.segments, ()), (*self.evals, call))
        if not call.visible(show_interpreter_frames):
            return self
        return NativeShape((*self.segments[:-1], self.segments[-1] + call.expand()), self.evals)


def python_runs(python: Sequence[tuple[Frame, bool]]) -> tuple[tuple[Frame, ...], ...]:
    """Python frames (outermost first, each flagged if it entered a new eval loop) cut into one run per eval loop."""
    runs: list[list[Frame]] = []
    for frame, entry in python:
        if entry or not runs:
            runs.append([frame])
        else:
            runs[-1].append(frame)
    return tuple(tuple(run) for run in runs)


def merge(runs: Sequence[tuple[Frame, ...]], native: NativeShape, *,
          show_interpreter_frames: bool = False) -> tuple[Frame, ...]:
    """One stack, outermost first, from the Python runs (python_runs) and the native stack's shape."""
    evals = native.evals
    # Runs go to eval frames from the innermost out; extra runs join the outermost eval's.
    unmatched = max(0, len(evals) - len(runs))
    placed: list[tuple[Frame, ...] | None] = [None] * unmatched + list(runs[len(runs) - (len(evals) - unmatched):])
    leftover = tuple(frame for run in runs[: max(0, len(runs) - len(evals))] for frame in run)
    out: list[Frame] = []
    if leftover:
        if evals:
            placed[0] = leftover + (placed[0] or ())
        else:
            out.extend(leftover)  # no eval frame unwound (stack cut short): Python frames first
    out.extend(native.segments[0])
    for index, call in enumerate(evals):
        frames = placed[index]
        if frames is not None:
            if show_interpreter_frames:
                out.extend(call.expand())
            out.extend(frames)
        elif call.visible(show_interpreter_frames):
            out.extend(call.expand())
        out.extend(native.segments[index + 1])
    return tuple(out)


def interpreter_paths(executable: str | None) -> Callable[[str], bool]:
    """A test for "this object is the interpreter": libpython, or the python executable that ran."""
    candidates = {os.path.realpath(path) for path in (executable, sys.executable) if path}

    def is_interpreter(path: str) -> bool:
        return os.path.basename(path).startswith("libpython") or os.path.realpath(path) in candidates

    return is_interpreter
