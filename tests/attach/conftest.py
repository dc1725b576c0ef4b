"""A real Python process to attach to: a loop allocating in a known function, reporting its hooks on request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_memprof.attach import inject
from tests import native_lib
from tests.conftest import subprocess_env

TIMEOUT_S = 60.0

# The main thread allocates in allocate_known() for ever; a second thread answers "state" lines on
# stdin with what sits on the allocation path now (the GOT slot of malloc in a library loaded
# before any attach, the Python allocator domains' functions, the profile functions, its own
# threading.setprofile hook) and ends the process on "quit".
TARGET = """
import ctypes, json, sys, threading, time

sys.path.insert(0, sys.argv[1])
import native_lib
lib = native_lib.load(sys.argv[2])
kept = []
loops = 0

def allocate_known():
    kept.append(bytearray(100_000))
    del kept[:-30]

class Allocator(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")]

def domains():
    found = []
    for domain in (0, 1, 2):
        allocator = Allocator()
        ctypes.pythonapi.PyMem_GetAllocator(ctypes.c_int(domain), ctypes.byref(allocator))
        found.append([allocator.malloc, allocator.calloc, allocator.realloc, allocator.free])
    return found

def state():
    tools = []
    if hasattr(sys, "monitoring"):
        tools = [sys.monitoring.get_tool(i) for i in range(6)]
    return {"malloc_slot": lib.malloc_slot(), "domains": domains(), "profile": repr(sys.getprofile()),
            "threading_profile": repr(getattr(threading, "_profile_hook", None)), "tools": tools, "loops": loops}

def answer():
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        print(json.dumps(state()), flush=True)
    global running
    running = False

def own_thread_profile(frame, event, arg):
    pass

running = True
threading.Thread(target=answer, daemon=True).start()
threading.setprofile(own_thread_profile)  # the program's own: memprof must give it back

def main():
    global loops
    print("ready", flush=True)
    while running:
        allocate_known()
        loops += 1
        time.sleep(0.002)

main()
"""


class Target:
    """The running target process and its state reports."""

    def __init__(self, folder: Path, **env: str) -> None:
        script = folder / "target.py"
        script.write_text(textwrap.dedent(TARGET))
        library = native_lib.build(folder)
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(Path(native_lib.__file__).parent.parent), str(library)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=subprocess_env(**env),
            cwd=folder,
        )
        assert self.process.stdout.readline().strip() == "ready"
        self.pid = self.process.pid

    def state(self) -> dict:
        """What is on the target's allocation path now."""
        self.process.stdin.write("state\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def wait_for(self, condition, what: str) -> dict:
        """Poll the state until ``condition(state)``; fail naming ``what`` after TIMEOUT_S."""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            now = self.state()
            if condition(now):
                return now
            time.sleep(0.1)
        pytest.fail(f"the target never showed {what}")

    def quit(self) -> int:
        """Ask the target to end; return its exit code."""
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
        try:
            return self.process.wait(TIMEOUT_S)
        finally:
            self.process.stdin.close()
            self.process.stdout.close()


@pytest.fixture
def target(tmp_path):
    """A running target process; ended (and checked to end normally) after the test."""
    started = Target(tmp_path)
    yield started
    if started.process.poll() is None:
        started.quit()


def usable_method() -> str:
    """The injection method this Python uses; skips the test with the precise reason when it cannot be had."""
    method = inject.choose_method("auto")
    scope = inject.ptrace_scope()
    if scope == 3:
        pytest.skip(f"{inject.PTRACE_SCOPE} is 3: ptrace is disabled on this machine")
    if method == "gdb":
        try:
            inject.find_gdb()
        except inject.AttachError as error:
            pytest.skip(f"attaching on Python {sys.version_info[0]}.{sys.version_info[1]} needs gdb: {error}")
    return method
