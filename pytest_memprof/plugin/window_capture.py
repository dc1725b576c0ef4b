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
from collections.abc import Iterable
from pathlib import Path

import pytest

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


def _digest(nodeid: str, length: int) -> str:
    return hashlib.sha1(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:length]


# Each collected test's file stem (without .bin/.html), set at collection for every output to use.
FILE_STEM_KEY = pytest.StashKey[str]()


def capture_file_stems(nodeids: Iterable[str]) -> dict[str, str]:
    """A file stem per test, unique among ``nodeids``: the readable name, with a short hash where two collide.

    Readable names lose what the file system cannot hold (``sub/test_x.py::t`` and
    ``sub_test_x.py::t``, parameters ``a_b``, ``a/b``, ``a b``, ``a:b`` all read the same), so the
    tests sharing one get the hash of their own node id. Case is ignored when comparing, for file
    systems that do. The answer depends only on the set of tests, so xdist's workers, which collect
    the same set, agree on it.
    """
    unique = list(dict.fromkeys(nodeids))
    readable = {nodeid: capture_file_name(nodeid)[: -len(".bin")] for nodeid in unique}
    for length in (8, 16, 40):
        sharing: dict[str, int] = {}
        for stem in readable.values():
            sharing[stem.lower()] = sharing.get(stem.lower(), 0) + 1
        stems = {nodeid: stem if sharing[stem.lower()] == 1 else f"{stem}-{_digest(nodeid, length)}"
                 for nodeid, stem in readable.items()}
        if len({stem.lower() for stem in stems.values()}) == len(stems):
            return stems
    raise AssertionError("sha1 prefixes of distinct node ids collided")  # not in this universe


def file_stem(item: pytest.Item) -> str:
    """The test's file stem chosen at collection (capture_file_stems), or its readable name for a late item."""
    return item.stash.get(FILE_STEM_KEY, None) or capture_file_name(item.nodeid)[: -len(".bin")]


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
