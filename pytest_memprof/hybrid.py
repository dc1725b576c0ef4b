"""Hybrid stacks: a native stack whose interpreter eval frames are replaced by the Python frames they ran.

The capture gives, per allocation, the Python stack (each frame flagged when it entered a new C
eval loop rather than being run inline by its caller's loop) and the native stack. Python frames
are cut into runs, one per eval loop (a run starts at each entry frame), the launcher's frames
included, and the runs are matched to the eval frames of the native stack. When the native stack
is whole (it reaches the process's or the thread's start-up code) they are matched from the
outermost in: the n-th eval loop entered runs the n-th run, and an eval frame left over at the
inner end is a loop entered whose first frame is not pushed yet (a C function calling back into
Python, caught allocating the new frame), which runs no frame shown. A native stack cut at its
maximum depth has lost its outermost frames, so there they are matched from the innermost out,
and leftover Python frames join the outermost eval frame. The launcher's frames are dropped last.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .model import Frame
from .trie import memoised

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


def whole_after(whole: bool | None, call: NativeCall) -> bool | None:
    """A native stack's ``whole`` (NativeShape) once ``call`` is its new innermost frame: its outermost decides."""
    return call.is_startup if whole is None else whole


@dataclass(frozen=True)
class NativeShape:
    """A native stack cut at its eval frames: ``segments[i]`` are the frames shown between eval
    ``i - 1`` and eval ``i`` (outermost first; the last segment is below the innermost eval).
    ``whole``: its outermost frame is start-up code, so no frame was cut off (None: no frame yet)."""

    segments: tuple[tuple[Frame, ...], ...] = ((),)
    evals: tuple[NativeCall, ...] = ()
    whole: bool | None = None

    def extended(self, call: NativeCall, show_interpreter_frames: bool) -> NativeShape:
        """This shape with ``call`` as its new innermost frame."""
        whole = whole_after(self.whole, call)
        if call.is_eval:
            return NativeShape((*self.segments, ()), (*self.evals, call), whole)
        if not call.visible(show_interpreter_frames):
            return self if whole == self.whole else NativeShape(self.segments, self.evals, whole)
        return NativeShape((*self.segments[:-1], self.segments[-1] + call.expand()), self.evals, whole)


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
    if native.whole and len(runs) <= len(evals):
        # A whole native stack: runs go to eval frames from the outermost in; evals left over at
        # the inner end run no frame shown (a loop just entered, or the launcher's dropped frames).
        placed: list[tuple[Frame, ...] | None] = [*runs, *[None] * (len(evals) - len(runs))]
        leftover: tuple[Frame, ...] = ()
    else:
        # Cut short (or more runs than loops): runs go to eval frames from the innermost out; extra
        # runs join the outermost eval's.
        unmatched = max(0, len(evals) - len(runs))
        placed = [None] * unmatched + list(runs[len(runs) - (len(evals) - unmatched):])
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


class PythonStacks(Protocol):
    """What hybrid assembly needs of the Python side (Capture): stacks as shown, and the trie."""

    def stack(self, node_id: int) -> tuple[Frame, ...]:
        """The Python stack of trie node ``node_id``, outermost first, without the launcher's frames."""

    def parent(self, node: int) -> int:
        """The trie parent of ``node``."""


class NativeCalls(Protocol):
    """Native return addresses as calls (symbols.CaptureSymbols)."""

    def call(self, address: int, map_index: int, in_eval_loop: bool = False) -> NativeCall:
        """The call at return address ``address``, recorded in mapping ``map_index`` (-1: unknown);
        ``in_eval_loop`` when the tracker marked the address as the interpreter's eval loop."""

    def calls(self, wanted: list[tuple[int, int, bool]]) -> list[NativeCall]:
        """``call`` of each (address, map index, in eval loop)."""


class Locator(Protocol):
    """The reader's C++ walk over native nodes (_reader.HybridLocator)."""

    def calls(self) -> list[tuple[int, int, bool]]:
        """(return address, map index, eval mark) of each distinct call."""

    def classify(self, flags: bytes, show_interpreter_frames: bool) -> None:
        """One byte per call: 1 an eval frame, 2 shown, 4 start-up code; and whether the interpreter's frames show."""


class HybridStacks:
    """One capture's hybrid stacks (Python node, native node) assembled by ``merge``, with per-node memos.

    Stacks share their outer nodes, so per native node its shape (the stack cut at its eval frames)
    and per Python node its runs are kept: a hybrid stack costs its own length, not its depth.
    """

    def __init__(self, calls: NativeCalls, show_interpreter_frames: bool = False) -> None:
        self._symbols = calls
        self.show_interpreter_frames = show_interpreter_frames
        self.pairs: list[tuple[int, int]] = []  # (Python node, native node) per hybrid index
        # (parent, return address, map index, in the eval loop)
        self._native_nodes: list[tuple[int, int, int, bool]] = []
        self._entries: list[bool] = []  # per Python node - 1: it entered a new eval loop
        self._calls: dict[int, NativeCall] = {}  # per native node
        self._runs: dict[int, tuple[tuple[Frame, ...], ...]] = {0: ()}
        self._bounds: dict[int, tuple[tuple[int, ...], int]] = {0: ((), 0)}  # per Python node (_run_bounds)
        self._forget_shown()

    def _forget_shown(self) -> None:
        # What depends on which frames show.
        self._stacks: dict[int, tuple[Frame, ...]] = {}
        self._shapes: dict[int, NativeShape] = {0: NativeShape()}

    def set_tables(self, native_nodes: list, pairs: list, entries: list) -> None:
        """The reader's tables as they stand (they only grow)."""
        self._native_nodes, self.pairs, self._entries = native_nodes, pairs, entries

    def show(self, show_interpreter_frames: bool) -> None:
        """Keep (or hide) the interpreter's own C frames from now on."""
        if show_interpreter_frames != self.show_interpreter_frames:
            self.show_interpreter_frames = show_interpreter_frames
            self._forget_shown()

    def stack(self, index: int, python: PythonStacks) -> tuple[Frame, ...]:
        """The frames of hybrid stack ``index``, outermost first."""
        frames = self._stacks.get(index)
        if frames is None:
            python_node, native_node = self.pairs[index]
            frames = self._stacks[index] = merge(self._python_runs(python_node, python),
                                                 self._native_shape(native_node),
                                                 show_interpreter_frames=self.show_interpreter_frames)
        return frames

    def classify(self, locator: Locator) -> list[NativeCall]:
        """Tell ``locator`` (the reader's ``HybridLocator``, which walks the native nodes in C++) what
        each distinct call is; the calls, in its order, give the frames of its answers (innermost:
        ``expand()[-1]``, symbolised only for the calls that are answers)."""
        calls = self._symbols.calls(locator.calls())
        show = self.show_interpreter_frames
        locator.classify(bytes(call.is_eval | call.visible(show) << 1 | call.is_startup << 2 for call in calls), show)
        return calls

    def _python_runs(self, python_node: int, python: PythonStacks) -> tuple[tuple[Frame, ...], ...]:
        """The runs of ``python_node``'s whole stack (launcher frames included, so that runs still
        count eval loops), holding only the frames ``python.stack`` shows: a launcher's run is empty."""
        runs = self._runs.get(python_node)
        if runs is not None:
            return runs
        bounds, depth = self._run_bounds(python_node, python)
        shown = python.stack(python_node)
        dropped = depth - len(shown)  # stack() drops a leading run of frames (the launcher's)
        ends = (*bounds[1:], depth)
        runs = self._runs[python_node] = tuple(shown[max(0, start - dropped):max(0, end - dropped)]
                                               for start, end in zip(bounds, ends))
        return runs

    def _run_bounds(self, python_node: int, python: PythonStacks) -> tuple[tuple[int, ...], int]:
        """(index of each run's first frame, number of frames) of ``python_node``'s whole stack."""
        memo = self._bounds
        chain = []
        node = python_node
        while node not in memo:
            chain.append(node)
            node = python.parent(node)
        for node in reversed(chain):
            bounds, depth = memo[python.parent(node)]
            if self._entries[node - 1] or not depth:
                bounds = (*bounds, depth)
            memo[node] = (bounds, depth + 1)
        return memo[python_node]

    def _native_shape(self, native_node: int) -> NativeShape:
        return memoised(native_node, self._shapes, lambda node: self._native_nodes[node - 1][0],
                        lambda above, node: above.extended(self._call(node), self.show_interpreter_frames))

    def _call(self, node: int) -> NativeCall:
        call = self._calls.get(node)
        if call is None:
            _, address, map_index, in_eval_loop = self._native_nodes[node - 1]
            call = self._calls[node] = self._symbols.call(address, map_index, in_eval_loop)
        return call
