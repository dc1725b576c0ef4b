"""A standalone capture file for one test, from its window of the session's in-memory stream.

A window's records refer to frames and stacks defined earlier in the session, so the file
starts with those definitions re-encoded (the ones known before the window opened), followed
by the window's own records and a trailer. Frame and stack ids are positions, so the prelude
keeps their order. The result reads like any capture (memprof stats, flamegraph, ...).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from .. import launcher
from .._encoding import TRAILER, prelude, varint, write_capture
from .._reader import NativeReader


def write_window_capture(path: Path, reader: NativeReader, window: bytes, frames_before: int, nodes_before: int,
                         nodeid: str, duration_s: float, *, trace_python_allocators: bool = True) -> None:
    """Write ``path``: header, then an LZ4 frame of prelude + window records + trailer."""
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
    }).encode()
    trailer = bytearray([TRAILER])
    varint(int(reader.end_ms), trailer)
    varint(int(reader.records), trailer)
    tables = prelude(reader, frames_before, nodes_before, reader.native_nodes_at_window)
    write_capture(path, header, bytes(tables) + window + bytes(trailer))
