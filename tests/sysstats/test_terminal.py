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

import pytest

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


class Tmux:
    """``memprof ARGS`` in a real terminal (tmux, its own server socket), read with capture-pane."""

    def __init__(self, tmp_path, *args: str, width: int = 80, height: int = 24) -> None:
        import shlex
        import shutil

        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed (apt-get install tmux)")
        self.tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
        self.status = tmp_path / "status"
        env = " ".join(f"{name}={shlex.quote(value)}" for name, value in subprocess_env(TERM="xterm-256color").items()
                       if name in ("PYTHONPATH", "TERM", "PATH", "HOME"))
        command = " ".join(shlex.quote(part) for part in [*memprof_command(), *args])
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "view", "-x", str(width), "-y", str(height),
                        f"env {env} {command}; echo $? > {shlex.quote(str(self.status))}; sleep 60"],
                       check=True, timeout=10)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "view"], capture_output=True, text=True,
                              timeout=10).stdout

    def read_until(self, pattern, timeout: float = 30) -> str:
        done = pattern if callable(pattern) else lambda text: re.search(pattern, text)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if done(screen):
                return screen
            assert time.monotonic() < deadline, screen
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "view", *keys], check=True, timeout=10)

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while not self.status.exists() or not self.status.read_text().strip():
            assert time.monotonic() < deadline, self.screen()
            time.sleep(0.2)
        return int(self.status.read_text())

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], timeout=10)


@pytest.fixture
def tmux(tmp_path):
    """Start ``memprof ARGS`` in tmux; the tmux server is killed at the end."""
    started = []

    def start(*args: str, width: int = 80, height: int = 24) -> Tmux:
        folder = tmp_path / str(len(started))
        folder.mkdir()
        terminal = Tmux(folder, *args, width=width, height=height)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.close()


MEMORY_TOTAL = r"total\s+[\d.]+[MGT]\b"
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def test_the_view_shows_every_panel_and_processes_at_80x24_and_q_quits(tmux):
    view = tmux("sys", "-t", "0.3")
    screen = view.read_until(MEMORY_TOTAL)
    for title in ("CPU", "MEM", "SWAP", "LOAD", "NETWORK", "DISK I/O", "FILE SYS", "SENSORS", "TASKS", "PID",
                  "Command"):
        assert title in screen, (title, screen)
    rows = [line for line in screen.splitlines() if re.match(r"\s+[\d.]+\s+[\d.]+\s+\S+\s+\d+\s", line)]
    assert len(rows) >= 8, screen  # processes still fit at 80x24
    # Long commands are cut at the edge, not given a horizontal scroll bar that takes a process's row
    # (with four mounted file systems the table kept only seven rows).
    lines = screen.splitlines()
    footer = next(index for index, line in enumerate(lines) if re.search(r"\d+ processes sorted", line))
    assert lines[footer - 1] in rows, screen
    # Refreshing: the sample time in the header moves on.
    view.read_until(lambda text: re.search(TIMESTAMP, text) and re.search(TIMESTAMP, text).group() not in screen)
    view.keys("h")
    assert "memprof sys hotkeys" in view.read_until("hotkeys")
    view.keys("h")
    view.read_until(lambda text: "hotkeys" not in text)
    view.keys("q")
    assert view.exit_code() == 0


def test_the_view_stops_after_n_refreshes(tmux):
    view = tmux("sys", "-t", "0.2", "--stop-after", "2")
    assert view.exit_code() == 0


def test_a_client_renders_a_servers_stats(start_server, tmux):
    server = start_server("-s", "-t", "0.2")
    view = tmux("sys", "-c", f"127.0.0.1:{server.port}", "-t", "0.2", "--stop-after", "5", width=120)
    screen = view.read_until(MEMORY_TOTAL)
    assert f"127.0.0.1:{server.port}" in screen and "PID" in screen
    assert view.exit_code() == 0


def test_the_view_without_a_terminal_is_a_usage_error():
    result = run_memprof("sys", "-t", "0.2")
    assert_one_line_error(result, "the terminal view needs a terminal")
    assert result.returncode == 2


def test_a_client_view_says_its_server_is_away_and_fails_when_told_to_stop(tmux):
    from .conftest import free_port

    port = free_port()
    view = tmux("sys", "-c", f"127.0.0.1:{port}", "-t", "0.3", "--stop-after", "6", width=140)
    view.read_until(rf"127\.0\.0\.1:{port} is not answering \(connection refused\)")
    assert view.exit_code() == 1
    assert f"memprof: error: no stats from 127.0.0.1:{port} after 6 tries" in view.screen()
    assert "Traceback" not in view.screen()


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
