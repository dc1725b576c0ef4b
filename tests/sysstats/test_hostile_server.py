"""Our clients read bounded replies (issue 17, item 11): a hostile server costs a time-out and one line, no more."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from .conftest import assert_one_line_error, run_memprof


class HostileServer:
    """Answers every connection on 127.0.0.1 with ``behaviour(connection)``, until stopped."""

    def __init__(self, behaviour) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.behaviour = behaviour
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(2)
            connection.recv(65536)
            self.behaviour(connection, self.stopping)
        except OSError:
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


def endless_body(connection, stopping) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"
    deadline = time.monotonic() + 30  # bounded even if the client never gives up
    while not stopping.is_set() and time.monotonic() < deadline:
        connection.sendall(chunk)


def huge_length(connection, stopping) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{")
    stopping.wait(5)


def bad_status_line(connection, stopping) -> None:
    connection.sendall(b"\x1b]0;pwned\x07\x1b[2JHELLO THERE\r\n\r\n")


def deep_json(connection, stopping) -> None:
    body = b"[" * 200000 + b"]" * 200000
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                       + body)


def silent(connection, stopping) -> None:
    stopping.wait(30)


def not_json(connection, stopping) -> None:
    body = b"<html>\x1b[31mred</html>"
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


@pytest.mark.parametrize(("behaviour", "fragment"), [
    (endless_body, "larger than the 8 MiB"),
    (huge_length, "more than the 8 MiB"),
    (bad_status_line, "does not speak HTTP"),
    (deep_json, "nests JSON deeper"),
    (silent, "no reply within"),
    (not_json, "is not JSON"),
])
@pytest.mark.parametrize("mode", ["client", "browser"])
def test_a_hostile_server_costs_one_line_and_a_bounded_time(behaviour, fragment, mode, tmp_path):
    server = HostileServer(behaviour)
    try:
        started = time.monotonic()
        if mode == "client":
            result = run_memprof("sys", "-c", f"127.0.0.1:{server.port}", "--stdout", "mem.total", "--stop-after", "1",
                                 timeout=60)
            assert_one_line_error(result, fragment)
        else:
            config = tmp_path / "memprof.conf"
            config.write_text(f"[serverlist]\nserver_1_name=127.0.0.1\nserver_1_port={server.port}\n")
            result = run_memprof("sys", "--browser", "-C", str(config), timeout=60, env={"COLUMNS": "250"})
            assert result.returncode == 0 and "OFFLINE" in result.stdout and fragment in result.stdout, result
        assert time.monotonic() - started < 20
        assert "\x1b" not in result.stderr + result.stdout and "pwned" not in result.stderr + result.stdout
    finally:
        server.stop()
