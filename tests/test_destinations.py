"""Tracker destinations as memray names them: FileDestination, and SocketDestination read by our live stream reader."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest

from pytest_memprof import Capture, FileDestination, SocketDestination, Tracker, TrackerError
from pytest_memprof.errors import MemprofError
from pytest_memprof.live.sources import SocketSource
from pytest_memprof.live.stream import LiveSession
from tests.conftest import subprocess_env

MiB = 2**20


def allocate_in_file_destination():
    return bytearray(8 * MiB)


def test_file_destination_writes_the_capture_and_honours_overwrite(tmp_path):
    out = tmp_path / "capture.bin"
    out.write_bytes(b"old")
    with pytest.raises(TrackerError, match="already exists"):
        Tracker(FileDestination(out)).start()
    with Tracker(FileDestination(out, overwrite=True, compress_on_exit=False)):
        kept = allocate_in_file_destination()
    capture = Capture.open(out)
    assert capture.peak_bytes >= 8 * MiB
    assert any(
        stack.location and stack.location.function == "allocate_in_file_destination" for stack in capture.peak_stacks()
    )
    del kept


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PROGRAM = """
import sys
from pytest_memprof import SocketDestination, Tracker

def allocate_for_the_viewer():
    return [bytearray(1 << 20) for _ in range(6)]

with Tracker(SocketDestination(server_port={port}, address="127.0.0.1")):
    kept = allocate_for_the_viewer()
print("done", flush=True)
"""


def connect(port: int, process: subprocess.Popen, timeout: float = 30.0) -> SocketSource:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return SocketSource("127.0.0.1", port)
        except MemprofError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_socket_destination_streams_the_capture_to_a_live_viewer(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PROGRAM.format(port=port))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        session = LiveSession(connect(port, process))
        deadline = time.monotonic() + 60
        while session.pump(0.2) and time.monotonic() < deadline:
            pass
        state = session.snapshot()
        session.close()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip() == "done"
    assert f"waiting for a viewer on 127.0.0.1:{port}: run `memprof live {port}`" in err
    assert state.started and state.ended and not state.truncated
    # By line: before 3.11 the comprehension's frame is named "<listcomp>", without its function's.
    line = PROGRAM.splitlines().index("    return [bytearray(1 << 20) for _ in range(6)]") + 1
    rows = [row for row in state.rows if (row.file, row.line) == ("<string>", line)]
    assert rows and sum(row.bytes for row in rows) >= 6 * MiB, state.rows


def test_socket_destination_on_a_port_in_use_is_a_tracker_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(TrackerError, match=r"SocketDestination: cannot listen on 127\.0\.0\.1"):
            Tracker(SocketDestination(server_port=taken.getsockname()[1])).start()
    assert not Tracker.is_active()
