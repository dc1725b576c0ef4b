"""The memory markers: what a test asks for, parsed at collection (verdict.py judges whether it got it)."""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from typing import Callable

import pytest

from ..errors import UsageError
from ..model import Frame, StackStat
from ..sizes import format_size, parse_size

MARKERS = {
    "limit_memory": "limit_memory(size, *, current_thread_only=False): fail if the test's peak memory "
    "exceeds size (e.g. '10MB', powers of 1024)",
    "no_leaks": "no_leaks(*, warmup=0, filter_fn=None, current_thread_only=False): fail if memory "
    "allocated by the test is still allocated after it returns and gc.collect() ran; warmup=N runs "
    "the test N extra times first (to fill caches); filter_fn(stack) -> bool keeps a leaking stack",
    "limit_leaks": "limit_leaks(size, *, filter_fn=None, current_thread_only=False): fail if any one place "
    "(call stack) leaks more than size, as pytest-memray's limit_leaks; filter_fn(stack) -> bool keeps a stack",
    "limit_leaked_objects": "limit_leaked_objects(*, filter_fn=None): fail if objects created by the test "
    "function are still alive after it returns and gc.collect() ran, as pytest-memray's; filter_fn(obj) -> bool "
    "keeps an object; needs CPython 3.13.3 or later",
}


@dataclass(frozen=True)
class LeakStack:
    """What a ``filter_fn`` receives: one leaking call stack.

    ``frames`` run most recent call first, as pytest-memray's ``Stack.frames``; each frame has
    pytest-memray's names (``function``, ``filename``, ``lineno``) and ours (``file``, ``line``,
    ``native``). ``location`` is the allocating frame; ``bytes`` and ``count`` what the stack leaked.
    """

    frames: tuple[Frame, ...]
    bytes: int
    count: int
    thread_id: int = 0
    allocator: str = ""

    @classmethod
    def of(cls, stack: StackStat) -> LeakStack:
        """The filter's view of a leak stack (whose frames run outermost first)."""
        return cls(stack.frames[::-1], stack.bytes, stack.count, stack.thread_id, stack.allocator)

    @property
    def location(self) -> Frame | None:
        """The allocating frame (``frames[0]``), or None when the stack shows no frame."""
        return self.frames[0] if self.frames else None


StackFilter = Callable[[LeakStack], bool]
MAX_WARMUP = 10  # each warm-up run is a whole extra run of the test


@dataclass
class MemorySpec:
    """What a test's markers (and the global default limit) ask of it."""

    limit_bytes: int | None = None
    limit_source: str = ""
    no_leaks: bool = False
    leak_limit_bytes: int | None = None
    leak_source: str = ""
    warmup: int = 0
    filter_fn: StackFilter | None = None
    current_thread_only: bool = False
    has_marker: bool = False
    leaked_objects: bool = False  # limit_leaked_objects
    object_filter: Callable[[object], bool] | None = None

    @property
    def checks_leaks(self) -> bool:
        """Whether leaks are judged, which needs a full gc.collect() after the test."""
        return self.no_leaks or self.leak_limit_bytes is not None or self.leaked_objects


def _check_kwargs(marker: pytest.Mark, allowed: set) -> None:
    unknown = set(marker.kwargs) - allowed
    if unknown:
        raise UsageError(f"{marker.name}() got unexpected argument(s) {', '.join(sorted(unknown))}; "
                         f"it accepts {', '.join(sorted(allowed)) or 'none'}")


def _size_argument(marker: pytest.Mark) -> int:
    if len(marker.args) != 1:
        raise UsageError(f"{marker.name}() takes exactly one size, e.g. {marker.name}(\"10MB\")")
    try:
        return parse_size(marker.args[0])
    except UsageError as error:
        raise UsageError(f"{marker.name}(): {error}") from None


def _filter(marker: pytest.Mark) -> StackFilter | None:
    filter_fn = marker.kwargs.get("filter_fn")
    if filter_fn is not None and not callable(filter_fn):
        raise UsageError(f"{marker.name}(filter_fn=...) must be a callable taking a stack")
    return filter_fn


def spec_for(item: pytest.Item, default_limit: int | None) -> MemorySpec:
    """Parse the memory markers that apply to ``item`` (function, class or module level).

    Raises pytest.UsageError naming the test when a marker is malformed.
    """
    spec = MemorySpec()
    try:
        # Markers on the function itself (not inherited from its class or module) must not contradict.
        doubled = sum(1 for own in getattr(item, "own_markers", ()) if own.name == "limit_memory")
        if doubled > 1:
            raise UsageError(f"limit_memory is given {doubled} times on the test; give it once")
        marker = item.get_closest_marker("limit_memory")
        if marker is not None:
            _check_kwargs(marker, {"current_thread_only"})
            spec.limit_bytes = _size_argument(marker)
            spec.limit_source = f"limit_memory({marker.args[0]!r})"
            spec.current_thread_only |= bool(marker.kwargs.get("current_thread_only", False))
            spec.has_marker = True
        elif default_limit is not None:
            spec.limit_bytes = default_limit
            spec.limit_source = f"--memprof-limit {format_size(default_limit)}"
        marker = item.get_closest_marker("no_leaks")
        if marker is not None:
            _check_kwargs(marker, {"warmup", "filter_fn", "current_thread_only"})
            if marker.args:
                raise UsageError("no_leaks() takes no positional arguments; did you mean limit_leaks(size)?")
            warmup = marker.kwargs.get("warmup", 0)
            if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
                raise UsageError(f"no_leaks(warmup=...) must be a whole number of 0 or more, got {warmup!r}")
            if warmup > MAX_WARMUP:
                raise UsageError(f"no_leaks(warmup=...) is at most {MAX_WARMUP}, got {warmup}")
            spec.no_leaks = True
            spec.warmup = warmup
            spec.filter_fn = _filter(marker)
            spec.current_thread_only |= bool(marker.kwargs.get("current_thread_only", False))
            spec.has_marker = True
        marker = item.get_closest_marker("limit_leaks")
        if marker is not None:
            _check_kwargs(marker, {"filter_fn", "current_thread_only"})
            spec.leak_limit_bytes = _size_argument(marker)
            spec.leak_source = f"limit_leaks({marker.args[0]!r})"
            spec.filter_fn = spec.filter_fn or _filter(marker)
            spec.current_thread_only |= bool(marker.kwargs.get("current_thread_only", False))
            spec.has_marker = True
        marker = item.get_closest_marker("limit_leaked_objects")
        if marker is not None:
            refusal = _leaked_objects_refusal()
            if refusal:
                raise UsageError(refusal)
            _check_kwargs(marker, {"filter_fn"})
            if marker.args:
                raise UsageError("limit_leaked_objects() takes no positional arguments")
            spec.leaked_objects = True
            spec.object_filter = _filter(marker)
            spec.has_marker = True
    except UsageError as error:
        raise pytest.UsageError(f"{item.nodeid}: {error}") from None
    return spec


def _leaked_objects_refusal() -> str | None:
    # pytest-memray counts the objects created during the test and alive after it, which CPython
    # tells a reference tracer of every kind of object only from 3.13.3 on; refused at collection
    # before that, as pytest-memray refuses it.
    from .._tracker import can_watch_objects

    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 13, 3) or not can_watch_objects():
        return f"limit_leaked_objects needs CPython 3.13.3 or later (it tracks object lifetimes); this is {version}"
    return None


def garbage_count() -> int:
    """How many objects gc.garbage holds now."""
    return len(gc.garbage)
