"""A standalone capture file for one test, from its window of the session's in-memory stream.

A window's records refer to frames and stacks defined earlier in the session, so the file (written
in C++, native/capture_writer.h) starts with those definitions, followed by the window's own
records and a trailer. The result reads like any capture (memprof stats, flamegraph, ...).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from .. import launcher
from .._reader import CaptureReader


def write_window_capture(path: Path, reader: CaptureReader, window: bytes, frames_before: int, nodes_before: int,
                         nodeid: str, duration_s: float, *, trace_python_allocators: bool = True) -> None:
    """Write ``path``: header, then an LZ4 frame of the tables the window refers to, its records and a trailer."""
    native = bool(reader.native_nodes())
    header = json.dumps({
        "pid": os.getpid(),
        "python_version": platform.python_version(),
        "start_time": time.time() - duration_s,
        "command_line": " ".join(sys.argv),
        "test": nodeid,
        # Stacks of a test start at the test: readers drop the leading frames of these files.
        "runner_files": list(launcher.PYTEST),
        "native": native,
        "trace_python_allocators": trace_python_allocators,
        "follow_fork": False,
        "aggregated": False,
    })
    reader.write_window_capture(path, header, window, frames_before, nodes_before, reader.native_nodes_at_window)
