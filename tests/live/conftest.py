"""Fixtures for the live view's tests: a real allocating program under a real ``memprof run``."""

from __future__ import annotations

import asyncio
import os
import re
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Callable

import pytest

from ..conftest import subprocess_env

TIMEOUT_S = 60.0  # generous: the machine is shared; a hang fails instead of blocking

# Allocates in a loop until the file named by argv[1] appears (or for ever), then exits with argv[2].
# Two locations differ on purpose: few big blocks versus many small ones, so sorting by bytes and by
# count disagree; a named thread allocates too, for the thread filter.
PROGRAM = """
import os, sys, threading, time

stop_file = sys.argv[1]
exit_code = int(sys.argv[2])
big, small, worker_kept = [], [], []

def hold_big_blocks():
    big.append(bytearray(300_000))
    del big[:-20]

def hold_many_small():
    for _ in range(200):
        small.append(bytearray(40))
    del small[:-4000]

def worker_allocates(stop):
    while not stop.is_set():
        worker_kept.append(bytearray(150_000))
        del worker_kept[:-3]
        time.sleep(0.05)

stop = threading.Event()
worker = threading.Thread(target=worker_allocates, args=(stop,), name="worker")
worker.start()
try:
    while not os.path.exists(stop_file):
        hold_big_blocks()
        hold_many_small()
        time.sleep(0.05)
finally:
    stop.set()
    worker.join()
sys.exit(exit_code)
"""


def env() -> dict:
    """The environment for subprocesses: they import the same pytest_memprof as this run (tox: site-packages)."""
    return subprocess_env()


def memprof_command() -> list[str]:
    """``python -m pytest_memprof`` with this interpreter."""
    return [sys.executable, "-m", "pytest_memprof"]


@pytest.fixture
def program(tmp_path) -> Path:
    """The allocating program; it stops once ``tmp_path / "stop"`` exists."""
    path = tmp_path / "allocates.py"
    path.write_text(textwrap.dedent(PROGRAM))
    return path


@pytest.fixture
def memprof(tmp_path):
    """Run ``memprof ARGS`` in tmp_path; returns the CompletedProcess (text, both streams captured)."""

    def run(*args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run([*memprof_command(), *args], capture_output=True, text=True, env=env(), cwd=tmp_path,
                              timeout=timeout)

    return run


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_port(process: subprocess.Popen, timeout: float = TIMEOUT_S) -> int:
    """The port ``memprof run --live-remote`` says it waits on (read from its stderr)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 0.5)
        if ready:
            line = process.stderr.readline()
            seen += line
            match = re.search(r"waiting for a viewer on 127\.0\.0\.1:(\d+)", line)
            if match:
                return int(match.group(1))
            if not line:
                break
    process.kill()
    raise AssertionError(f"no port announced; stderr so far: {seen!r}")


def run_pilot(coroutine: Awaitable) -> None:
    """Run a pilot-driven test body in a thread with its own event loop.

    Its own thread, because another fixture of the session (playwright's sync API) may keep an event
    loop running in this one; no asyncio plugin is needed either.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(coroutine, TIMEOUT_S * 2))
        except BaseException as error:
            failure.append(error)

    runner = threading.Thread(target=run, name="pilot")
    runner.start()
    runner.join(TIMEOUT_S * 3)
    assert not runner.is_alive(), "the pilot-driven test hung"
    if failure:
        raise failure[0]


async def wait_until(pilot, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    """Let the app run until ``condition()`` holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


async def quit_view(pilot, app) -> None:
    """Press q and wait for the view to exit (sleeping, since the pilot cannot pause an app that has left)."""
    await pilot.press("q")
    deadline = time.monotonic() + TIMEOUT_S
    while app.is_running:
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the view to quit")
        await asyncio.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether a process with this id exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of this process group exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
