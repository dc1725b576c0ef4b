"""pytest-memprof: per-test memory profiling with Python and native stacks."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .errors import CaptureError, CaptureVersionError, MemprofError, TrackerError, UsageError
from .model import CaptureMetadata, Frame, IntervalStat, StackStat, ThreadInfo, TimelinePoint, View
from .tracker import Tracker

if TYPE_CHECKING:
    from .capture import Capture, MissingLibraryWarning


def __getattr__(name: str) -> Any:
    """Capture and MissingLibraryWarning on first use: reading captures (symbols, DWARF) is most of
    the package's import time, and ``memprof run`` or a pytest run without reports never needs it."""
    if name in ("Capture", "MissingLibraryWarning"):
        from . import capture

        return getattr(capture, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Capture",
    "CaptureError",
    "CaptureMetadata",
    "CaptureVersionError",
    "Frame",
    "IntervalStat",
    "MemprofError",
    "MissingLibraryWarning",
    "StackStat",
    "ThreadInfo",
    "TimelinePoint",
    "Tracker",
    "TrackerError",
    "UsageError",
    "View",
    "__version__",
]
