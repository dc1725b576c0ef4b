"""Fixtures for ``memprof sys``: the real command in a subprocess (shared with tests/cli)."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error, memprof, memprof_command
from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["ROOT", "assert_one_line_error", "free_port", "memprof", "memprof_command", "run_memprof",
           "subprocess_env"]

_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")


class Server:
    """A ``memprof sys -w`` or ``-s`` subprocess on a free port of 127.0.0.1."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        environment = subprocess_env(**(env or {}))
        self.process = subprocess.Popen([*memprof_command(), "sys", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=environment)
        line = self.process.stdout.readline()
        match = _URL.search(line)
        if not match:
            self.process.kill()
            raise AssertionError(f"no URL announced: {line!r} {self.process.stderr.read()!r}")
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """SIGTERM, then the exit code (a clean stop is 0)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=10)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture
def start_server():
    """Start ``memprof sys ARGS --port 0`` servers; all are stopped (and must stop cleanly) at the end."""
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        server = Server(*args, *(() if "--port" in args else ("--port", "0")), env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.stop() == 0


def free_port() -> int:
    """A port nobody listens on right now (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_memprof(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``memprof ARGS`` and wait for it."""
    environment = subprocess_env(**(env or {}))
    return subprocess.run([*memprof_command(), *args], capture_output=True, text=True, env=environment,
                          timeout=timeout, stdin=subprocess.DEVNULL)



def glances_command() -> list[str]:
    """Glances installed beside this interpreter (a test extra), else skip."""
    import sys

    pytest.importorskip("glances", reason="Glances is not installed (it is in the test extras)")
    script = Path(sys.executable).parent / "glances"
    return [str(script)] if script.exists() else [sys.executable, "-m", "glances"]


class GlancesServer:
    """Real ``glances -s`` or ``-w`` on a free port of 127.0.0.1, up once its port answers."""

    def __init__(self, mode: str, tmp_path: Path) -> None:
        import time

        self.port = free_port()
        config = tmp_path / "glances.conf"
        config.write_text("[global]\ncheck_update=false\n[outputs]\ncors_origins=http://127.0.0.1\n")
        # --disable-autodiscover: Glances would announce itself by multicast on every interface.
        args = [mode, "--bind", "127.0.0.1", "--port", str(self.port), "-C", str(config), "-t", "1",
                "--disable-autodiscover"]
        if mode == "-w":
            args.append("--disable-webui")
        self.process = subprocess.Popen([*glances_command(), *args], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                        env=subprocess_env(HOME=str(tmp_path)))
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "glances exited at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "glances did not listen within 60 s"
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def glances_server(tmp_path):
    """Start real Glances servers (``glances_server("-s")``); all are stopped at the end."""
    started: list[GlancesServer] = []

    def start(mode: str) -> GlancesServer:
        server = GlancesServer(mode, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
