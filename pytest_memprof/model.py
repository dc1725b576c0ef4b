"""The aggregates a capture yields: plain, immutable values that every reporter consumes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class View(enum.IntEnum):
    """Which allocations a report shows; the values are the reader's own (native/reader.h ``View``)."""

    PEAK = 0  # live at the peak
    LEAKS = 1  # still live at the end
    TEMPORARY = 2  # freed by its thread within a few of its other allocations (memray's threshold)
    TOTAL = 3  # every allocation made

    @classmethod
    def of(cls, value: View | str) -> View:
        """``value`` as a View: a View, or its name ("peak", "leaks", "temporary", "total")."""
        if isinstance(value, View):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(f"unknown view {value!r}; expected one of "
                             f"{', '.join(view.label for view in cls)}") from None

    @property
    def label(self) -> str:
        """Its name in pages and on the command line: "peak", "leaks", ..."""
        return self.name.lower()

    @property
    def title(self) -> str:
        """How a report says which bytes it shows."""
        return _VIEW_TITLES[self]


_VIEW_TITLES = {View.PEAK: "at the peak", View.LEAKS: "leaked (still allocated at the end)",
                View.TEMPORARY: "in temporary allocations", View.TOTAL: "allocated in all"}


@dataclass(frozen=True)
class Frame:
    """One frame of a call stack: a Python function or, with native tracking, a C/C++ function.

    ``first_line`` is the line where a Python function starts (0 when unknown, and for C frames):
    it is not part of a frame's identity, but tells how far a function moved between two versions
    of its file (``Capture.diff``).
    """

    function: str
    file: str
    line: int
    native: bool = False
    first_line: int = field(default=0, compare=False)

    @property
    def filename(self) -> str:
        """pytest-memray's name for ``file`` (its ``StackFrame.filename``)."""
        return self.file

    @property
    def lineno(self) -> int:
        """pytest-memray's name for ``line`` (its ``StackFrame.lineno``)."""
        return self.line

    def __str__(self) -> str:
        return f"{self.function} at {self.file}:{self.line}"


@dataclass(frozen=True)
class StackStat:
    """Bytes and allocation count attributed to one call stack.

    ``frames`` run from the outermost call to the allocating frame (as in a traceback:
    most recent call last). ``thread_id`` is 0 when threads were merged; ``allocator``
    is "" when allocators were merged. ``launcher`` is True for memory allocated by what launched
    the program (pytest, ``memprof run``) before it reached the program: ``frames`` is then empty.
    """

    frames: tuple[Frame, ...]
    bytes: int
    count: int
    thread_id: int = 0
    allocator: str = ""
    launcher: bool = False

    @property
    def location(self) -> Frame | None:
        """The allocating frame (innermost), or None for an allocation with no known stack."""
        return self.frames[-1] if self.frames else None


# A report makes a StackStat per stack and a Frame per distinct frame (tens of thousands each on a
# --native capture): a frozen dataclass's __init__ sets each field through object.__setattr__,
# these fill the instance's dict at once (0.26 against 1.0 us a StackStat). Every field, in the
# order declared; tests/test_capture.py holds them to the dataclasses' own constructors.
_new = object.__new__


def make_stack_stat(frames: tuple[Frame, ...], bytes: int, count: int, thread_id: int, allocator: str,
                    launcher: bool) -> StackStat:
    """``StackStat(frames, bytes, count, thread_id, allocator, launcher)``, made faster."""
    stat = _new(StackStat)
    fields = stat.__dict__
    fields["frames"] = frames
    fields["bytes"] = bytes
    fields["count"] = count
    fields["thread_id"] = thread_id
    fields["allocator"] = allocator
    fields["launcher"] = launcher
    return stat


def make_frame(function: str, file: str, line: int, native: bool, first_line: int) -> Frame:
    """``Frame(function, file, line, native, first_line)``, made faster."""
    frame = _new(Frame)
    fields = frame.__dict__
    fields["function"] = function
    fields["file"] = file
    fields["line"] = line
    fields["native"] = native
    fields["first_line"] = first_line
    return frame


@dataclass(frozen=True)
class IntervalStat:
    """Allocations of one stack made in one sampling interval and freed in another (or never).

    Times are seconds since the capture started; ``freed_s`` is None when still live at the end.
    """

    frames: tuple[Frame, ...]
    allocated_s: float
    freed_s: float | None
    bytes: int
    count: int
    thread_id: int = 0
    allocator: str = ""


@dataclass(frozen=True)
class TimelinePoint:
    """The heap (tracked bytes live) and the process RSS at one moment of the capture."""

    time_s: float
    heap_bytes: int
    rss_bytes: int


@dataclass(frozen=True)
class ThreadInfo:
    """A thread seen in the capture: its OS thread id and last known name."""

    thread_id: int
    name: str


@dataclass(frozen=True)
class CaptureMetadata:
    """What the capture header records about the tracked process."""

    format_version: int
    pid: int
    python_version: str
    start_time: float
    command_line: str
    native: bool
    trace_python_allocators: bool
    follow_fork: bool
    aggregated: bool
    extra: dict = field(default_factory=dict)
