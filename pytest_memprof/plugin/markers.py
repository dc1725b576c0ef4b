"""The memory markers: what a test asks for, parsed at collection (verdict.py judges whether it got it)."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Callable

import pytest

from ..errors import UsageError
from ..model import StackStat
from ..sizes import format_size, parse_size

MARKERS = {
    "limit_memory": "limit_memory(size, *, current_thread_only=False): fail if the test's peak memory "
    "exceeds size (e.g. '10MB', powers of 1024)",
    "no_leaks": "no_leaks(*, warmup=0, filter_fn=None, current_thread_only=False): fail if memory "
    "allocated by the test is still allocated after it returns and gc.collect() ran; warmup=N runs "
    "the test N extra times first (to fill caches); filter_fn(stack) -> bool keeps a leaking stack",
    "limit_leaks": "limit_leaks(size, *, filter_fn=None, current_thread_only=False): fail if the test "
    "leaks more than size",
}

StackFilter = Callable[[StackStat], bool]
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

    @property
    def checks_leaks(self) -> bool:
        """Whether leaks are judged, which needs a full gc.collect() after the test."""
        return self.no_leaks or self.leak_limit_bytes is not None


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
    except UsageError as error:
        raise pytest.UsageError(f"{item.nodeid}: {error}") from None
    return spec


def garbage_count() -> int:
    """How many objects gc.garbage holds now."""
    return len(gc.garbage)
