"""The full-screen view (``memprof sys`` alone, or ``-c HOST``), driven through a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import psutil
from rich.console import Console

from pytest_memprof.sysstats import LocalSource
from pytest_memprof.sysstats.terminal import PLUGINS_SHOWN, render

from .conftest import assert_one_line_error, memprof_command, run_memprof, subprocess_env

_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


class Terminal:
    """``memprof ARGS`` with a 140x40 pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        env = subprocess_env(TERM="xterm-256color", COLUMNS="140", LINES="40")
        self.process = subprocess.Popen([*memprof_command(), *args], stdin=slave, stdout=slave, stderr=slave,
                                        env=env, close_fds=True)
        os.close(slave)
        self.output = b""

    def read_until(self, pattern, timeout: float = 20) -> str:
        """Read the screen until ``pattern`` (a regular expression, or a predicate of the text) holds."""
        done = pattern if callable(pattern) else lambda text: re.search(pattern, text)
        deadline = time.monotonic() + timeout
        while not done(self.text()):
            assert time.monotonic() < deadline, self.text()[-2000:]
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    break
        return self.text()

    def text(self) -> str:
        return _ESCAPES.sub(b"", self.output).decode("utf-8", "replace")

    def close(self, timeout: float = 15) -> int:
        """Wait for the exit code, draining the terminal meanwhile (a full one would block the child)."""
        deadline = time.monotonic() + timeout
        try:
            while self.process.poll() is None:
                assert time.monotonic() < deadline, self.text()[-2000:]
                if select.select([self.master], [], [], 0.1)[0]:
                    try:
                        self.output += os.read(self.master, 65536)
                    except OSError:
                        time.sleep(0.05)
            return self.process.returncode
        finally:
            os.close(self.master)


MEMORY_TOTAL = r"total\s+[\d.]+ (GiB|MiB|TiB)"
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def test_the_view_shows_memory_and_processes_and_q_quits():
    terminal = Terminal("sys", "-t", "0.2")
    screen = terminal.read_until(MEMORY_TOTAL)
    assert "MEM" in screen and "SWAP" in screen and "LOAD" in screen and "CPU" in screen
    assert "Processes by memory" in screen and "NETWORK" in screen and "FILE SYS" in screen
    # Refreshing: the sample time in the header moves on (seconds resolution, 0.2 s refreshes).
    terminal.read_until(lambda text: len(set(re.findall(TIMESTAMP, text))) >= 2)
    os.write(terminal.master, b"q")
    assert terminal.close() == 0


def test_the_view_stops_after_n_refreshes():
    terminal = Terminal("sys", "-t", "0.2", "--stop-after", "2")
    terminal.read_until(MEMORY_TOTAL)
    assert terminal.close() == 0


def test_a_client_renders_a_servers_stats(start_server):
    server = start_server("-s", "-t", "0.2")
    terminal = Terminal("sys", "-c", f"127.0.0.1:{server.port}", "-t", "0.2", "--stop-after", "3")
    screen = terminal.read_until(MEMORY_TOTAL)
    assert f"127.0.0.1:{server.port}" in screen
    assert terminal.close() == 0


def test_render_shows_the_figures_and_escapes_markup():
    snapshot = LocalSource(PLUGINS_SHOWN).sample()
    snapshot["system"]["hostname"] = "[bold red]host[/]"
    console = Console(width=140, record=True, color_system=None)
    console.print(render(snapshot, "this machine", problem="[blink]away[/]"))
    text = console.export_text()
    assert "[bold red]host[/]" in text and "[blink]away[/]" in text
    assert str(psutil.cpu_count()) in text and "Processes by memory" in text


def test_the_view_without_a_terminal_is_a_usage_error():
    result = run_memprof("sys", "-t", "0.2")
    assert_one_line_error(result, "the terminal view needs a terminal")
    assert result.returncode == 2


def test_a_client_view_says_its_server_is_away_and_fails_when_told_to_stop():
    from .conftest import free_port

    port = free_port()
    terminal = Terminal("sys", "-c", f"127.0.0.1:{port}", "-t", "0.2", "--stop-after", "4")
    terminal.read_until(rf"127\.0\.0\.1:{port} is not answering \(connection refused\)")
    assert terminal.close() == 1
    assert f"memprof: error: no stats from 127.0.0.1:{port} after 4 tries" in terminal.text()
    assert "Traceback" not in terminal.text()


def test_the_password_is_asked_twice_on_the_terminal(tmp_path):
    import base64
    import urllib.request

    terminal = Terminal("sys", "-s", "--port", "0", "-t", "0.5", "--password")
    terminal.read_until("memprof sys password: ")
    os.write(terminal.master, b"typed secret\n")
    terminal.read_until("again: ")
    os.write(terminal.master, b"typed secret\n")
    announced = r"http://127\.0\.0\.1:(\d+)/api/4/ \(samples at most every 0\.5 s, when asked, password required"
    port = int(re.search(announced, terminal.read_until(r"password required")).group(1))
    token = base64.b64encode(b"memprof:typed secret").decode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/4/status",
                                     headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert "typed secret" not in terminal.text()  # not echoed
    terminal.process.terminate()
    assert terminal.close() == 0


def test_two_different_passwords_are_refused():
    terminal = Terminal("sys", "-w", "--port", "0", "--password")
    terminal.read_until("memprof sys password: ")
    os.write(terminal.master, b"one\n")
    terminal.read_until("again: ")
    os.write(terminal.master, b"two\n")
    terminal.read_until("the two passwords differ")
    assert terminal.close() == 2
