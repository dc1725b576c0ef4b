"""Every reader command refuses what is not a capture file at once, with one line: FIFOs, devices,
folders, headers nested or sized past anything a real header holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading

import lz4.frame
import pytest

from tests.records import FIXED_HEADER

from .conftest import assert_one_line_error, memprof_command

READERS = [("stats",), ("stats", "--json"), ("parse",), ("tree",), ("summary",), ("flamegraph",), ("table",)]


def capture_bytes(header_text: str, version: int = 4) -> bytes:
    header = header_text.encode()
    return FIXED_HEADER.pack(b"MEMPROF\0", version, 0, len(header)) + header + lz4.frame.compress(b"")


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_fifo_is_refused_at_once_by_every_reader(memprof, tmp_path, command):
    fifo = tmp_path / "capture.bin"
    os.mkfifo(fifo)
    # Before: every reader blocked in open() waiting for a writer that never comes.
    result = memprof(*command, str(fifo), timeout=30)
    assert_one_line_error(result, "is a FIFO, not a capture file")


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_device_and_a_folder_are_refused_by_every_reader(memprof, tmp_path, command):
    assert_one_line_error(memprof(*command, os.devnull, timeout=30), "is a character device")
    assert_one_line_error(memprof(*command, str(tmp_path), timeout=30), "is a folder")


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_header_nested_deeper_than_any_real_one_is_refused(memprof, tmp_path, command):
    path = tmp_path / "deep.bin"
    path.write_bytes(capture_bytes('{"pid": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}"))
    # Before: a RecursionError traceback from json.loads.
    assert_one_line_error(memprof(*command, str(path), timeout=30), "nested deeper than 64 levels")


def test_a_header_nested_64_levels_inside_strings_is_a_string_not_nesting(memprof, tmp_path):
    path = tmp_path / "brackets.bin"
    path.write_bytes(capture_bytes(json.dumps({"command_line": "[{" * 200 + '"\\"['})))
    result = memprof("stats", "--json", str(path), timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["command_line"] == "[{" * 200 + '"\\"['


def test_a_header_longer_than_the_format_allows_is_refused_before_it_is_read(memprof, tmp_path):
    path = tmp_path / "huge.bin"
    # A header length of 3 GiB in a file of a few bytes: refused by its length alone.
    path.write_bytes(FIXED_HEADER.pack(b"MEMPROF\0", 4, 0, 3 << 30) + b"{}")
    assert_one_line_error(memprof("stats", str(path), timeout=30), "bytes long; a header is at most 1048576")


def serve_once(payload: bytes) -> tuple[int, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        with server:
            server.settimeout(30)
            connection, _ = server.accept()
            with connection:
                connection.sendall(payload)
                connection.settimeout(30)
                try:
                    connection.recv(1)  # hold the line open until the viewer hangs up
                except OSError:
                    pass

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_memprof_live_refuses_a_deeply_nested_header_with_one_line(tmp_path):
    port, thread = serve_once(capture_bytes('{"a": ' + "[" * 5000 + "]" * 5000 + "}"))
    result = subprocess.run(
        [*memprof_command(), "live", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    thread.join(30)
    assert_one_line_error(result, "nested deeper than 64 levels")
