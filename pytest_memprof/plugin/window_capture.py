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

import lz4.frame

from .._reader import FORMAT_VERSION, NativeReader

# Where pytest (and what it runs tests through) lives: a test's stacks begin below these frames.
RUNNER_FILE_PARTS = ("/_pytest/", "/pluggy/", "/pytest_memprof/", "/pytest/__main__.py", "/bin/pytest", "/xdist/",
                     "/execnet/", "/anyio/", "/asyncio/")

_FRAME, _NODE, _THREAD_NAME, _TRAILER = 66, 67, 65, 70
_MAX_STRING = 1 << 16


def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _string(text: str, out: bytearray) -> None:
    data = text.encode("utf-8", errors="replace")[: _MAX_STRING - 1]
    _varint(len(data), out)
    out += data


def _prelude(reader: NativeReader, frames_before: int, nodes_before: int) -> bytearray:
    out = bytearray()
    for function, file, first_line in reader.frames()[:frames_before]:
        out.append(_FRAME)
        _string(function, out)
        _string(file, out)
        _varint(first_line, out)
    for parent, frame, line in reader.nodes()[:nodes_before]:
        out.append(_NODE)
        _varint(parent, out)
        _varint(frame, out)
        _varint(line, out)
    for tid, name in reader.thread_names().items():
        out.append(_THREAD_NAME)
        _varint(tid, out)
        _string(name, out)
    return out


def write_window_capture(path: Path, reader: NativeReader, window: bytes, frames_before: int, nodes_before: int,
                         nodeid: str, duration_s: float) -> None:
    """Write ``path``: header, then an LZ4 frame of prelude + window records + trailer."""
    header = json.dumps({
        "pid": os.getpid(),
        "python_version": platform.python_version(),
        "start_time": time.time() - duration_s,
        "command_line": " ".join(sys.argv),
        "test": nodeid,
        # Stacks of a test start at the test: readers drop the leading frames of these files.
        "runner_files": list(RUNNER_FILE_PARTS),
        "native": False,
        "trace_python_allocators": True,
        "follow_fork": False,
        "aggregated": False,
    }).encode()
    trailer = bytearray([_TRAILER])
    _varint(int(reader.end_ms), trailer)
    _varint(int(reader.records), trailer)
    body = bytes(_prelude(reader, frames_before, nodes_before)) + window + bytes(trailer)
    fixed = b"MEMPROF\x00" + FORMAT_VERSION.to_bytes(2, "little") + b"\x00\x00" + len(header).to_bytes(4, "little")
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(fixed + header + lz4.frame.compress(body, block_checksum=True))
    os.replace(partial, path)  # never a half-written capture under the real name
