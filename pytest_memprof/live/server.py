"""The streaming server of ``memprof run --live-remote``, and the runner's handle on it.

The server is a separate process (``python -m pytest_memprof.live.server``) so that its own
allocations and threads never appear in the program's capture. It sends every viewer the capture
file from its first byte, then follows it as the tracker appends. Its protocol with the runner is
three things: it prints ``listening HOST PORT`` (or ``error MESSAGE``) once bound, ``viewer`` when the
first viewer connects; the runner closes the server's stdin once the capture is complete, and the
server then sends each viewer the rest and closes.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .._launch import python_module_command
from ..errors import MemprofError

CHUNK = 256 << 10
POLL_S = 0.05
SEND_TIMEOUT_S = 30.0  # a viewer that takes nothing for this long is dropped, not waited for
FINISH_TIMEOUT_S = 30.0  # after the program ends, how long viewers get to receive the rest
START_TIMEOUT_S = 30.0


def _send_capture(conn: socket.socket, path: Path, writer_done: threading.Event) -> None:
    conn.settimeout(SEND_TIMEOUT_S)
    capture = None
    try:
        while capture is None:
            finished = writer_done.is_set()
            try:
                capture = open(path, "rb")
            except FileNotFoundError:
                if finished:
                    return
                time.sleep(POLL_S)
        while True:
            # Read after asking: once the writer is done, this read reaches the true end.
            finished = writer_done.is_set()
            data = capture.read(CHUNK)
            if data:
                conn.sendall(data)
            elif finished:
                conn.shutdown(socket.SHUT_WR)
                return
            else:
                time.sleep(POLL_S)
    except OSError:
        return  # the viewer went away: that changes nothing for the program
    finally:
        if capture is not None:
            capture.close()
        conn.close()


def _watch_stdin(writer_done: threading.Event) -> None:
    # EOF on stdin: the runner finished the capture (or died; either way the file will not grow).
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    except OSError:
        pass
    writer_done.set()


def serve(path: Path, host: str, port: int) -> int:
    """Serve ``path`` to every viewer until stdin closes; return the exit code."""
    try:
        listener = socket.create_server((host, port))
    except OSError as error:
        print(f"error cannot listen on {host}:{port}: {error.strerror or error}", flush=True)
        return 1
    print(f"listening {host} {listener.getsockname()[1]}", flush=True)
    writer_done = threading.Event()
    threading.Thread(target=_watch_stdin, args=(writer_done,), daemon=True).start()
    senders: list[threading.Thread] = []
    with listener:
        while not writer_done.is_set():
            ready, _, _ = select.select([listener], [], [], 0.1)
            if not ready:
                continue
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            if not senders:
                print("viewer", flush=True)
            sender = threading.Thread(target=_send_capture, args=(conn, path, writer_done), daemon=True)
            sender.start()
            senders.append(sender)
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    for sender in senders:
        sender.join(max(deadline - time.monotonic(), 0.0))
    return 0


class StreamServer:
    """The runner's side: start the server process, wait for a viewer, finish."""

    def __init__(self, capture: Path, host: str, port: int) -> None:
        self.capture = Path(capture)
        self.host = host
        self.port = port
        self._process: subprocess.Popen | None = None

    def start(self) -> int:
        """Start the server; return the port it listens on. Raises MemprofError if it cannot listen."""
        command = [*python_module_command("pytest_memprof.live.server"), "--host", self.host,
                   "--port", str(self.port), os.fspath(self.capture.resolve())]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._read_line(START_TIMEOUT_S)
        if line.startswith("listening "):
            self.port = int(line.split()[-1])
            return self.port
        self.finish()
        if line.startswith("error "):
            raise MemprofError(line[len("error ") :])
        raise MemprofError("the live server did not start")

    def wait_for_viewer(self) -> None:
        """Block until a viewer connects (the program has not started yet: nothing to lose)."""
        if self._read_line(None) != "viewer":
            raise MemprofError("the live server stopped before a viewer connected")

    def finish(self) -> None:
        """Tell the server the capture is complete and wait for it to send the rest."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(FINISH_TIMEOUT_S + 5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()

    def _read_line(self, timeout: float | None) -> str:
        assert self._process is not None and self._process.stdout is not None
        # select() sees the pipe, not the text buffer: use it only for the first line, before anything is buffered.
        if timeout is not None:
            ready, _, _ = select.select([self._process.stdout], [], [], timeout)
            if not ready:
                return ""
        return self._process.stdout.readline().strip()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (a capture is not something to publish by accident)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server (``python -m pytest_memprof.live.server --host H --port N FILE``)."""
    parser = argparse.ArgumentParser(prog="python -m pytest_memprof.live.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("capture")
    args = parser.parse_args(argv)
    return serve(Path(args.capture), args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
