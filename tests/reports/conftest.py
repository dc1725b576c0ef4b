"""Captures made by the real tracker for the report tests: a two-phase program with a hostile
thread name and source path, an empty capture and a truncated one."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from pytest_memprof import Capture, Tracker
from tests.cli.conftest import memprof_command
from tests.conftest import subprocess_env

HOSTILE = "<script>alert(1)</script>"

TWO_PHASES = f'''
import threading
import time


# Loops, not comprehensions: before 3.12 a comprehension is a function of its own (<listcomp>).
def early_phase():
    blocks = []
    for _ in range(200):
        blocks.append(bytearray(10_000))
    return blocks


def late_phase():
    blocks = []
    for _ in range(300):
        blocks.append(bytearray(10_000))
    return blocks


def in_named_thread(out):
    out.append(bytearray(1_000_000))


kept_early = early_phase()
time.sleep(0.3)
out = []
thread = threading.Thread(target=in_named_thread, args=(out,), name={HOSTILE!r})
thread.start()
thread.join()
time.sleep(0.3)
kept_late = late_phase()
time.sleep(0.1)
'''


def run_memprof(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``memprof ARGS`` in a subprocess (the real command line), text output captured."""
    return subprocess.run([*memprof_command(), *args], capture_output=True, text=True,
                          cwd=cwd, env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="session")
def two_phase_capture(tmp_path_factory) -> Path:
    """``memprof run`` of a script living under a folder path that spells ``<script>alert(1)</script>``."""
    base = tmp_path_factory.mktemp("reports")
    # A file name cannot hold "/", so the hostile text spans two folders.
    folder = base / "<script>alert(1)<" / "script>"
    folder.mkdir(parents=True)
    script = folder / "two_phases.py"
    script.write_text(TWO_PHASES)
    result = run_memprof("run", "-q", "-o", str(base / "phases.bin"), str(script), cwd=base)
    assert result.returncode == 0, result.stderr
    return base / "phases.bin"


def make_empty_capture(path: Path) -> Path:
    """A real capture with no allocations: what a process killed before its first flush leaves.

    (Even a tracker that does nothing records its own start-up allocation, so the file is cut
    right after its header; it then reads as empty and truncated.)
    """
    with Tracker(path, trace_python_allocators=False):
        pass
    data = path.read_bytes()
    header_length = struct.unpack_from("<I", data, 12)[0]
    path.write_bytes(data[: 16 + header_length])
    assert Capture.open(path).total_allocations == 0
    return path


@pytest.fixture
def empty_capture(tmp_path) -> Path:
    """A real capture with no allocations (see make_empty_capture)."""
    return make_empty_capture(tmp_path / "empty.bin")


@pytest.fixture
def truncated_capture(two_phase_capture, tmp_path) -> Path:
    """The two-phase capture cut in the middle, as if the process had died while writing."""
    data = two_phase_capture.read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path
