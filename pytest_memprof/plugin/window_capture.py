"""One test's window of the session's in-memory stream, as a capture of its own.

A window's records refer to frames and stacks defined earlier in the session, so its file (written
in C++, native/capture_writer.h) starts with those definitions, followed by the window's own
records and a trailer. The result reads like any capture (memprof stats, flamegraph, ...); the
same header describes the in-memory capture the HTML report renders.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from .. import launcher
from .._reader import CaptureReader

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def capture_file_name(nodeid: str) -> str:
    """A file-safe name for a test's capture: readable, and short enough for any file system."""
    safe = _UNSAFE.sub("_", nodeid).strip("_") or "test"
    if len(safe) > _MAX_NAME:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:12]
        safe = f"{safe[:_MAX_NAME - 13]}-{digest}"
    return f"{safe}.bin"


def window_header(nodeid: str, duration_s: float, *, native: bool, trace_python_allocators: bool,
                  start_ms: int = 0) -> dict:
    """The header of a test's capture: the test, and pytest's files as its launcher (stacks start at the test).

    ``start_ms`` is when the window opened on the session's clock: the file's records keep that clock,
    and readers count the test's times (timeline, peak, duration) from there."""
    return {
        "pid": os.getpid(),
        "python_version": platform.python_version(),
        "start_time": time.time() - duration_s,
        "command_line": " ".join(sys.argv),
        "test": nodeid,
        "window_start_ms": start_ms,
        "runner_files": list(launcher.PYTEST),
        "native": native,
        "trace_python_allocators": trace_python_allocators,
        "follow_fork": False,
        "aggregated": False,
    }


def write_window_capture(path: Path, reader: CaptureReader, window: bytes, frames_before: int, nodes_before: int,
                         header: dict) -> None:
    """Write ``path``: the header, then the tables the window refers to, its records and a trailer (OSError if not)."""
    reader.write_window_capture(path, json.dumps(header), window, frames_before, nodes_before,
                                reader.native_nodes_at_window)
