"""pytest-memprof: per-test memory profiling with Python and native stacks."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CaptureError, CaptureVersionError, MemprofError, TrackerError, UsageError

# typing.TYPE_CHECKING without typing (2 ms of start-up); type checkers read this name as it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .capture import AllocationRecord, Capture, MissingLibraryWarning
    from .destinations import FileDestination, SocketDestination
    from .diff import DiffRow, Figures
    from .model import CaptureMetadata, Frame, IntervalStat, StackStat, ThreadInfo, TimelinePoint, View
    from .tracker import Tracker

# Loaded on first use: reading captures (symbols, DWARF) is most of the package's import time, and
# ``memprof run`` or a pytest run without reports never needs it; a report never needs the tracker
# (its extension and libstdc++ are a few MiB of a report's resident memory). The aggregates'
# types (model) are dataclasses: dataclasses and the inspect it imports are a third of `memprof
# run`'s start-up beyond python's own, for a program that never reads a capture.
_LAZY = {"AllocationRecord": "capture", "Capture": "capture", "MissingLibraryWarning": "capture",
         "FileDestination": "destinations", "SocketDestination": "destinations",
         "DiffRow": "diff", "Figures": "diff", "Tracker": "tracker",
         **dict.fromkeys(("CaptureMetadata", "Frame", "IntervalStat", "StackStat", "ThreadInfo", "TimelinePoint",
                          "View"), "model")}


def __getattr__(name: str) -> Any:
    """The read API's names (``_LAZY``), imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # asked once: later lookups find it without coming here
    return value


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
