"""Getting code into another process: the gdb search, ptrace refusals, the process's exit while attached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from pytest_memprof import Capture
from pytest_memprof.attach import inject
from tests.cli.conftest import assert_one_line_error, memprof_command
from tests.conftest import subprocess_env

from .conftest import TIMEOUT_S, Target, usable_method


def run_memprof(*args: str, cwd, env=None, prefix=()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *memprof_command(), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or subprocess_env(),
        timeout=TIMEOUT_S,
    )


def test_a_gdb_that_cannot_call_functions_is_named_and_the_next_one_is_used(target, tmp_path):
    method = usable_method()
    if method != "gdb":
        pytest.skip("this Python attaches with sys.remote_exec: no gdb is looked for")
    assert "cannot call a function in a process" in inject.gdb_problem("/bin/false")
    # $MEMPROF_GDB comes first; one that fails the check is passed over for the next candidate.
    env = subprocess_env(MEMPROF_GDB="/bin/false")
    attached = run_memprof("attach", str(target.pid), "-o", "cap.bin", cwd=tmp_path, env=env)
    assert attached.returncode == 0, attached.stderr
    assert run_memprof("detach", str(target.pid), cwd=tmp_path, env=env).returncode == 0
    assert not Capture.open(tmp_path / "cap.bin").truncated
    assert target.quit() == 0


def test_a_refused_ptrace_is_one_line_naming_ptrace(tmp_path):
    method = usable_method()
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("util-linux's unshare is not installed: no way to drop CAP_SYS_PTRACE here")
    probe = subprocess.run([unshare, "--user", "--map-root-user", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user namespace here ({probe.stderr.strip()}): no way to drop CAP_SYS_PTRACE")
    # A process that made itself non-dumpable may be traced only with CAP_SYS_PTRACE, which root
    # in a user namespace of its own does not have over it.
    code = (
        "import ctypes, time\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\nprint('ready', flush=True)\n"
        "while True:\n    x = [0] * 100\n    time.sleep(0.01)\n"
    )
    sealed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert sealed.stdout.readline().strip() == "ready"
        result = run_memprof(
            "attach",
            str(sealed.pid),
            "-o",
            "x.bin",
            "--method",
            method,
            cwd=tmp_path,
            prefix=(unshare, "--user", "--map-root-user"),
        )
        assert_one_line_error(result, f"ptrace of pid {sealed.pid} was refused")
        assert not (tmp_path / "x.bin").exists()
        assert sealed.poll() is None  # untouched
    finally:
        sealed.kill()
        sealed.wait()
        sealed.stdout.close()


def test_a_process_that_exits_while_attached_finishes_its_capture(target, tmp_path):
    method = usable_method()
    attached = run_memprof("attach", str(target.pid), "-o", "cap.bin", "--method", method, cwd=tmp_path)
    assert attached.returncode == 0, attached.stderr
    assert target.quit() == 0
    capture = Capture.open(tmp_path / "cap.bin")
    assert not capture.truncated
    assert any(frame.function == "allocate_known" for stack in capture.total_stacks() for frame in stack.frames)


def test_ptrace_scope_is_read_from_yama():
    scope = inject.ptrace_scope()
    if not os.path.exists(inject.PTRACE_SCOPE):
        assert scope is None
    else:
        assert scope == int(inject.PTRACE_SCOPE.read_text())


def test_a_process_that_runs_no_python_code_in_time_is_reported_and_left_untracked(tmp_path):
    method = usable_method()
    # The main thread blocks in a read until told to go on: the code memprof gives it can only run after.
    code = (
        "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n"
        "x = [bytearray(1000) for _ in range(100)]\n"
        "print('pytest_memprof' in sys.modules, flush=True)\n"
    )
    blocked = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert blocked.stdout.readline().strip() == "ready"
        own_tmp = tmp_path / "tmp"
        own_tmp.mkdir()
        result = run_memprof(
            "attach",
            str(blocked.pid),
            "-o",
            "x.bin",
            "--method",
            method,
            "--timeout",
            "2",
            cwd=tmp_path,
            env=subprocess_env(TMPDIR=str(own_tmp)),
        )
        assert_one_line_error(result, f"pid {blocked.pid} did not run memprof's code within 2 s", "--timeout")
        blocked.stdin.write("go\n")
        blocked.stdin.flush()
        # It ran memprof's code late, found nobody waiting, and did nothing: no tracker, no capture.
        assert blocked.stdout.readline().strip() == "False"
        assert blocked.wait(TIMEOUT_S) == 0
        assert not (tmp_path / "x.bin").exists()
        if method == "gdb":
            assert not list(own_tmp.iterdir())  # the late bootstrap removed its own file and folder
    finally:
        if blocked.poll() is None:
            blocked.kill()
            blocked.wait()
        blocked.stdin.close()
        blocked.stdout.close()


def test_a_process_with_remote_debugging_off_is_refused_by_remote_exec_and_reached_by_gdb(tmp_path):
    if not inject.remote_exec_available():
        pytest.skip("sys.remote_exec is CPython 3.14+")
    sealed = Target(tmp_path, PYTHON_DISABLE_REMOTE_DEBUG="1")
    try:
        refused = run_memprof("attach", str(sealed.pid), "-o", "x.bin", cwd=tmp_path)
        assert_one_line_error(refused, f"pid {sealed.pid}", "sys.remote_exec")
        assert not (tmp_path / "x.bin").exists()
        try:
            inject.find_gdb()
        except inject.AttachError as error:
            pytest.skip(f"--method gdb needs a gdb that can call functions: {error}")
        attached = run_memprof("attach", str(sealed.pid), "-o", "gdb.bin", "--method", "gdb", cwd=tmp_path)
        assert attached.returncode == 0, attached.stderr
        assert run_memprof("detach", str(sealed.pid), "--method", "gdb", cwd=tmp_path).returncode == 0
        capture = Capture.open(tmp_path / "gdb.bin")
        assert any(frame.function == "allocate_known" for frame in capture.peak_stacks()[0].frames)
    finally:
        if sealed.process.poll() is None:
            assert sealed.quit() == 0
