"""``memprof run --live`` and ``memprof live`` as a user runs them: the real commands in a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time

from pytest_memprof import Capture

from .conftest import TIMEOUT_S, alive, env, memprof_command, read_port

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78MNOP]|\x1b\][^\x07]*\x07")


class Terminal:
    """A pseudo-terminal running one command; keeps everything it prints (escape sequences removed)."""

    def __init__(self, command: list[str], cwd, columns: int = 160, lines: int = 45) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.master = master
        self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                        env={**env(), "TERM": "xterm-256color", "TMPDIR": str(cwd)},
                                        start_new_session=True)
        os.close(slave)
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the command and its terminal are gone
                return
            if not data:
                return
            self._output += data

    @property
    def text(self) -> str:
        return ANSI.sub(b"", bytes(self._output)).decode("utf-8", errors="replace")

    def wait_for(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} never appeared; the terminal shows:\n{self.text[-3000:]}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT_S)
        self._reader.join(TIMEOUT_S)
        os.close(self.master)


def test_run_live_shows_the_program_and_q_stops_it(program, tmp_path):
    terminal = Terminal([*memprof_command(), "run", "--live", "-o", "kept.bin", str(program),
                         str(tmp_path / "stop"), "0"], cwd=tmp_path)
    try:
        terminal.wait_for("hold_big_blocks")
        child_pid = int(terminal.wait_for(r"pid (\d+)").group(1))
        assert alive(child_pid)
        terminal.type(b"q")
        assert terminal.process.wait(TIMEOUT_S) == 130  # the program's exit code: stopped as by Ctrl+C
        log = terminal.wait_for(r"the program's output is in (\S+)").group(1)
    finally:
        terminal.close()
    assert not alive(child_pid)
    assert log.startswith(str(tmp_path)) and os.path.exists(log)  # the program's output is kept
    assert "memprof: wrote kept.bin" in terminal.text
    assert not Capture.open(tmp_path / "kept.bin").truncated


def test_memprof_live_watches_a_remote_program_until_it_ends(program, tmp_path):
    runner = subprocess.Popen([*memprof_command(), "run", "--live-remote", str(program), str(tmp_path / "stop"), "4"],
                              cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    terminal = None
    try:
        port = read_port(runner)
        terminal = Terminal([*memprof_command(), "live", str(port)], cwd=tmp_path)
        terminal.wait_for("hold_many_small")
        (tmp_path / "stop").touch()
        terminal.wait_for("ended with exit code 4")
        assert runner.wait(TIMEOUT_S) == 4
        terminal.type(b"q")
        assert terminal.process.wait(TIMEOUT_S) == 0
    finally:
        (tmp_path / "stop").touch()
        if terminal is not None:
            terminal.close()
        runner.wait(TIMEOUT_S)
        runner.stdout.close()
        runner.stderr.close()
    # Without -o, the capture lived in a temporary folder, removed at the end.
    assert not list(tmp_path.glob("*.bin"))


def test_run_live_stops_the_program_when_its_terminal_closes(program, tmp_path):
    terminal = Terminal([*memprof_command(), "run", "--live", str(program), str(tmp_path / "stop"), "0"], cwd=tmp_path)
    try:
        terminal.wait_for("hold_big_blocks")
        child_pid = int(terminal.wait_for(r"pid (\d+)").group(1))
        os.kill(terminal.process.pid, signal.SIGHUP)
        assert terminal.process.wait(TIMEOUT_S) == 130
    finally:
        terminal.close()
    assert not alive(child_pid)
