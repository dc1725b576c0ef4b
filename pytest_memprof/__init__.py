"""pytest-memprof: per-test memory profiling with Python and native stacks."""

from __future__ import annotations

__version__ = "0.1.0"

from .capture import AllocationRecord, Capture, MissingLibraryWarning
from .destinations import FileDestination, SocketDestination
from .diff import DiffRow, Figures
from .errors import CaptureError, CaptureVersionError, MemprofError, TrackerError, UsageError
from .model import CaptureMetadata, Frame, IntervalStat, StackStat, ThreadInfo, TimelinePoint, View
from .tracker import Tracker

__all__ = [
    "AllocationRecord",
    "Capture",
    "CaptureError",
    "CaptureMetadata",
    "CaptureVersionError",
    "DiffRow",
    "Figures",
    "FileDestination",
    "Frame",
    "IntervalStat",
    "MemprofError",
    "MissingLibraryWarning",
    "SocketDestination",
    "StackStat",
    "ThreadInfo",
    "TimelinePoint",
    "Tracker",
    "TrackerError",
    "UsageError",
    "View",
    "__version__",
]


def load_ipython_extension(ipython) -> None:
    """``%load_ext pytest_memprof``: the ``%%memprof_flamegraph`` cell magic (pytest_memprof.notebook)."""
    from .notebook import load

    load(ipython)
