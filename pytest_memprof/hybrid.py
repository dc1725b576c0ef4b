"""Hybrid stacks: a native stack whose interpreter eval frames are replaced by the Python frames they ran.

Each Python frame is placed at the eval loop that ran it; the rule (whole and cut native stacks,
loops entered that run no frame yet, the launcher's frames) and the merge itself are in C++, in
native/hybrid_locate.cc, which walks the reader's tables. What only Python knows is here: what
each distinct native call is (an eval frame, shown, start-up code), from its symbol.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol

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


def interpreter_paths(executable: str | None) -> Callable[[str], bool]:
    """A test for "this object is the interpreter": libpython, or the python executable that ran."""
    candidates = {os.path.realpath(path) for path in (executable, sys.executable) if path}

    def is_interpreter(path: str) -> bool:
        return os.path.basename(path).startswith("libpython") or os.path.realpath(path) in candidates

    return is_interpreter


class PythonStacks(Protocol):
    """What hybrid assembly needs of the Python side (Capture): its nodes' frames and the launcher rule."""

    def node_frame(self, node: int) -> Frame:
        """The frame of Python trie node ``node``."""

    def launcher_transitions(self) -> bytes | None:
        """launcher.py's rule as HybridLocator.place_python's table, or None without a launcher."""


class NativeCalls(Protocol):
    """Native return addresses as calls (symbols.CaptureSymbols)."""

    def calls(self, wanted: list[tuple[int, int, bool]]) -> list[NativeCall]:
        """The call at each (return address, map index (-1: unknown), eval mark of the tracker)."""


class Locator(Protocol):
    """The reader's C++ walk over native nodes (_reader.HybridLocator)."""

    def calls(self) -> list[tuple[int, int, bool]]:
        """(return address, map index, eval mark) of each distinct call."""

    def classify(self, flags: bytes, show_interpreter_frames: bool) -> None:
        """One byte per call: 1 an eval frame, 2 shown, 4 start-up code; and whether the interpreter's frames show."""

    def place_python(self, transitions: bytes) -> None:
        """The launcher rule as a table per frame id."""

    def stacks(self, indices: Iterable[int], python_frames: list, call_frames: list,
               python_frame: Callable[[int], Frame], frames_of_call: Callable[[int], tuple[Frame, ...]]) -> list:
        """The frames of each hybrid stack of ``indices``, merged in C++."""


class HybridStacks:
    """One capture's hybrid stacks (Python node, native node), merged by the reader's HybridLocator in
    C++ (native/hybrid_locate.cc, which states the rule); here each distinct call is classified and
    named once, and each Python node's and call's frames are made once, for all stacks.
    """

    def __init__(self, calls: NativeCalls, show_interpreter_frames: bool = False) -> None:
        self._symbols = calls
        self.show_interpreter_frames = show_interpreter_frames
        self._reader: Any = None
        self._sizes: tuple[int, int, int] = (0, 0, 0)  # the reader's table_sizes the locator was made for
        self._pairs: list[tuple[int, int]] | None = []
        self._locator: Locator | None = None
        self._calls: list[NativeCall] = []  # the locator's, classified
        self._python_frames: list[Frame | None] = [None]  # per Python node id
        self._call_frames: list[tuple[Frame, ...] | None] = []  # per call of the locator
        self._stacks: dict[int, tuple[Frame, ...]] = {}

    def set_tables(self, reader: Any) -> None:
        """The reader whose tables the stacks come from, as they stand (they only grow)."""
        sizes = reader.table_sizes
        if reader is not self._reader or sizes != self._sizes:
            self._reader, self._sizes, self._locator, self._pairs = reader, sizes, None, None

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """(Python node, native node) per hybrid stack index."""
        if self._pairs is None:
            self._pairs = [] if self._reader is None else self._reader.stack_pairs()
        return self._pairs

    def show(self, show_interpreter_frames: bool) -> None:
        """Keep (or hide) the interpreter's own C frames from now on."""
        if show_interpreter_frames != self.show_interpreter_frames:
            self.show_interpreter_frames = show_interpreter_frames
            self._locator = None
            self._stacks = {}

    def locator(self, python: PythonStacks) -> tuple[Locator, list[NativeCall]]:
        """The reader's HybridLocator for its tables as they stand, its calls classified (and named:
        the calls, in its order) and the launcher rule placed."""
        from ._reader import HybridLocator

        if self._locator is None:
            locator = HybridLocator(self._reader)
            calls = self._symbols.calls(locator.calls())
            show = self.show_interpreter_frames
            locator.classify(bytes(call.is_eval | call.visible(show) << 1 | call.is_startup << 2 for call in calls),
                             show)
            transitions = python.launcher_transitions()
            if transitions is not None:
                locator.place_python(transitions)
            self._locator, self._calls = locator, calls
            self._call_frames = [None] * len(calls)
            missing = self._sizes[0] + 1 - len(self._python_frames)
            if missing > 0:
                self._python_frames.extend([None] * missing)
        return self._locator, self._calls

    def stack(self, index: int, python: PythonStacks) -> tuple[Frame, ...]:
        """The frames of hybrid stack ``index``, outermost first."""
        frames = self._stacks.get(index)
        if frames is None:
            frames = self.stacks([index], python)[0]
        return frames

    def stacks(self, indices: list[int], python: PythonStacks) -> list[tuple[Frame, ...]]:
        """The frames of each hybrid stack of ``indices``, outermost first, kept for ``stack``."""
        memo = self._stacks
        wanted = [index for index in dict.fromkeys(indices) if index not in memo]
        if wanted:
            locator, calls = self.locator(python)
            made = locator.stacks(wanted, self._python_frames, self._call_frames, python.node_frame,
                                  lambda call: calls[call].expand())
            memo.update(zip(wanted, made))
        return [memo[index] for index in indices]
