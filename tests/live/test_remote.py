"""``memprof run --live-remote`` and ``memprof live``: the pair on 127.0.0.1, and what a viewer refuses."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading

import pytest
from pytest_memprof._reader import FORMAT_VERSION, MAGIC

from pytest_memprof import Capture
from pytest_memprof.live.sources import SocketSource
from pytest_memprof.live.stream import LiveSession
from pytest_memprof.live.view import LiveView
from tests.records import FIXED_HEADER

from ..cli.conftest import assert_one_line_error
from .conftest import TIMEOUT_S, env, free_port, memprof_command, quit_view, read_port, run_pilot, wait_until


@pytest.fixture
def remote(program, tmp_path):
    """Start ``memprof run --live-remote -o out.bin PROGRAM STOP_FILE CODE``; yields (process, port)."""
    processes = []

    def start(exit_code: int = 0, *options: str) -> tuple[subprocess.Popen, int]:
        process = subprocess.Popen(
            [*memprof_command(), "run", "--live-remote", *options, "-o", "out.bin", str(program),
             str(tmp_path / "stop"), str(exit_code)],
            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process, read_port(process)

    yield start
    (tmp_path / "stop").touch()
    for process in processes:
        try:
            process.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            stream.close()


def shows(app: LiveView, function: str) -> bool:
    return any(row[0] == function for row in app.table_rows())


def test_a_viewer_sees_the_program_then_disconnects_and_the_program_goes_on(remote, tmp_path):
    runner, port = remote(0)
    app = LiveView(LiveSession(SocketSource("127.0.0.1", port)))

    async def watch() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_until(pilot, lambda: shows(app, "hold_big_blocks"), "the allocating function in the table")
            status = str(app.query_one("#status").render())
            assert "running" in status and f"pid {runner.pid}" in status
            await quit_view(pilot, app)

    run_pilot(watch())
    # Disconnected: the program does not notice, and ends when told to, normally.
    with pytest.raises(subprocess.TimeoutExpired):
        runner.wait(1.0)
    (tmp_path / "stop").touch()
    assert runner.wait(TIMEOUT_S) == 0
    capture = Capture.open(tmp_path / "out.bin")  # -o keeps the capture
    assert not capture.truncated
    assert "memprof: wrote out.bin" in runner.stderr.read()


def test_the_viewer_shows_the_end_of_the_program_with_its_exit_code(remote, tmp_path):
    runner, port = remote(3)
    app = LiveView(LiveSession(SocketSource("127.0.0.1", port)))

    async def watch() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_until(pilot, lambda: shows(app, "hold_many_small"), "the allocating function in the table")
            (tmp_path / "stop").touch()
            await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.ended, "the end of the stream")
            assert app.snapshot.exit_code == 3
            assert "ended with exit code 3" in str(app.query_one("#status").render())
            await quit_view(pilot, app)

    run_pilot(watch())
    assert runner.wait(TIMEOUT_S) == 3


def test_a_second_viewer_gets_the_stream_from_the_start(remote, tmp_path):
    runner, port = remote(0)
    first = LiveSession(SocketSource("127.0.0.1", port))
    first.wait_for_header(TIMEOUT_S)
    first.close()
    second = LiveSession(SocketSource("127.0.0.1", port))
    try:
        second.wait_for_header(TIMEOUT_S)
        (tmp_path / "stop").touch()
        while second.pump(0.5):
            pass
        snapshot = second.snapshot()
    finally:
        second.close()
    assert snapshot.exit_code == 0 and not snapshot.truncated
    assert {row.function for row in snapshot.rows} >= {"hold_big_blocks", "hold_many_small", "worker_allocates"}
    assert runner.wait(TIMEOUT_S) == 0


def test_a_viewer_against_a_closed_port_says_so(memprof):
    port = free_port()
    result = memprof("live", str(port), timeout=TIMEOUT_S)
    assert_one_line_error(result, f"cannot connect to 127.0.0.1:{port}", "nothing is listening")


def serve_once(payload: bytes) -> tuple[int, threading.Thread]:
    """A one-connection server that sends ``payload`` and waits for the peer to leave."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT_S)

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(payload)
                conn.settimeout(TIMEOUT_S)
                conn.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_a_newer_capture_format_is_refused_by_name(memprof):
    port, server = serve_once(FIXED_HEADER.pack(MAGIC, FORMAT_VERSION + 1, 0, 2) + b"{}")
    result = memprof("live", str(port), timeout=TIMEOUT_S)
    server.join(TIMEOUT_S)
    assert_one_line_error(result, f"sends capture format version {FORMAT_VERSION + 1}",
                          f"this memprof reads up to version {FORMAT_VERSION}")


def test_something_that_is_not_a_capture_stream_is_refused(memprof):
    port, server = serve_once(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    result = memprof("live", str(port), timeout=TIMEOUT_S)
    server.join(TIMEOUT_S)
    assert_one_line_error(result, "does not send a memprof capture stream")



def test_a_silent_server_is_given_up_after_the_time_out(memprof):
    # A plain HTTP server (Python's own) says nothing until it is asked: the viewer used to wait
    # on a blank screen for ever.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        result = memprof("live", str(port), "--timeout", "1", timeout=TIMEOUT_S)
    finally:
        server.shutdown()
        server.server_close()
    assert_one_line_error(result, f"no capture header from 127.0.0.1:{port} within 1 s",
                          "memprof run --live-remote")


def test_the_time_out_must_be_a_positive_number_of_seconds(memprof):
    result = memprof("live", "8000", "--timeout", "0", timeout=TIMEOUT_S)
    assert result.returncode == 2
    assert_one_line_error(result, "--timeout 0: a time-out is a number of seconds above 0")

@pytest.mark.parametrize(("options", "message"), [
    (["--live-port", "8000"], "--live-port and --live-host go with --live-remote"),
    (["--live", "--live-remote"], "--live and --live-remote exclude each other"),
    (["--live-remote", "--live-port", "70000"], "a port is a number from 0 to 65535"),
    (["--live"], "--live needs a terminal"),
])
def test_live_options_that_mean_nothing_are_usage_errors(memprof, program, options, message):
    result = memprof("run", *options, str(program), "stop", "0", timeout=TIMEOUT_S)
    assert result.returncode == 2
    assert_one_line_error(result, message)


def test_a_port_in_use_is_one_clear_error(memprof, program):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = memprof("run", "--live-remote", "--live-port", str(port), str(program), "stop", "0",
                         timeout=TIMEOUT_S)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")
