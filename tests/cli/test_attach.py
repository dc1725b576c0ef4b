"""``memprof attach`` and ``memprof detach`` on a real running Python process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pytest_memprof import Capture
from tests.attach.conftest import TIMEOUT_S, Target, usable_method
from tests.conftest import subprocess_env

from .conftest import assert_one_line_error


@pytest.fixture
def method():
    """The injection method of this Python (remote_exec on 3.14+, gdb before); skipped with why if impossible."""
    return usable_method()


@pytest.fixture
def target(tmp_path):
    started = Target(tmp_path)
    yield started
    if started.process.poll() is None:
        started.quit()


def hooks_of(state: dict) -> dict:
    return {key: value for key, value in state.items() if key != "loops"}


def test_attach_then_detach_captures_the_allocating_function_and_leaves_the_process_as_it_was(
    memprof, method, target, tmp_path
):
    before = target.state()
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    env = subprocess_env(TMPDIR=str(own_tmp))
    attached = memprof("attach", str(target.pid), "-o", "cap.bin", "--method", method, env=env)
    assert attached.returncode == 0, attached.stderr
    assert f"tracking pid {target.pid}" in attached.stderr and str(tmp_path / "cap.bin") in attached.stderr
    during = target.state()
    # Tracking really runs in the process: its malloc goes through our hook.
    assert during["malloc_slot"] != before["malloc_slot"]
    assert during["domains"] != before["domains"]

    again = memprof("attach", str(target.pid), "-o", "other.bin", "--method", method, timeout=TIMEOUT_S)
    assert_one_line_error(again, f"pid {target.pid}", "already tracked by memprof attach", "cap.bin")
    assert not (tmp_path / "other.bin").exists()

    time.sleep(0.5)  # some loops of allocate_known() while tracked
    detached = memprof("detach", str(target.pid), "--method", method, env=env)
    assert detached.returncode == 0, detached.stderr
    assert "wrote" in detached.stderr and "cap.bin" in detached.stderr
    assert not list(own_tmp.iterdir())  # memprof's folders for the exchange are gone
    after = target.state()
    # Nothing of ours is left on the allocation path, and the program goes on.
    assert hooks_of(after) == hooks_of(before)
    later = target.wait_for(lambda state: state["loops"] > after["loops"], "its loop running after detach")
    assert hooks_of(later) == hooks_of(before)

    capture = Capture.open(tmp_path / "cap.bin")
    assert not capture.truncated
    assert capture.metadata.pid == target.pid
    top = capture.peak_stacks()[0]
    # The frames above the attach point are the program's own, read when tracking began.
    assert [frame.function for frame in top.frames] == ["<module>", "main", "allocate_known"]
    assert top.frames[-1].file.endswith("target.py")
    stats = memprof("stats", "cap.bin")
    assert stats.returncode == 0, stats.stderr
    flamegraph = memprof("flamegraph", "-o", "cap.html", "cap.bin")
    assert flamegraph.returncode == 0, flamegraph.stderr
    assert "allocate_known" in (tmp_path / "cap.html").read_text()

    assert target.quit() == 0


def test_a_second_session_after_detach_writes_a_capture_of_its_own(memprof, method, target, tmp_path):
    for name in ("first.bin", "second.bin"):
        assert memprof("attach", str(target.pid), "-o", name, "--method", method).returncode == 0
        time.sleep(0.2)
        result = memprof("detach", str(target.pid), "--method", method)
        assert result.returncode == 0, result.stderr
        assert not Capture.open(tmp_path / name).truncated
    assert target.quit() == 0


def test_native_and_system_allocator_only_options_reach_the_tracker(memprof, method, target, tmp_path):
    before = target.state()
    options = ("--native", "--no-python-allocators")
    result = memprof("attach", str(target.pid), "-o", "native.bin", *options, "--method", method)
    assert result.returncode == 0, result.stderr
    during = target.state()
    assert during["malloc_slot"] != before["malloc_slot"]
    assert during["domains"] == before["domains"]  # Python's allocators left alone
    time.sleep(0.3)
    assert memprof("detach", str(target.pid), "--method", method).returncode == 0
    assert hooks_of(target.state()) == hooks_of(before)
    capture = Capture.open(tmp_path / "native.bin", show_interpreter_frames=True)
    assert capture.metadata.native and not capture.metadata.trace_python_allocators
    top = capture.peak_stacks()[0]
    # Walked Python frames, with the interpreter's C frames below them down to the allocator.
    assert [frame.function for frame in top.frames if not frame.native][-1] == "allocate_known"
    assert any(frame.native for frame in top.frames)
    assert target.quit() == 0


def test_duration_stops_tracking_by_itself(memprof, method, target, tmp_path):
    before = target.state()
    result = memprof("attach", str(target.pid), "-o", "timed.bin", "--duration", "1", "--method", method)
    assert result.returncode == 0, result.stderr
    assert "for 1 s" in result.stderr
    target.wait_for(lambda state: hooks_of(state) == hooks_of(before), "its hooks restored after --duration")
    capture = Capture.open(tmp_path / "timed.bin")
    assert not capture.truncated
    assert any(frame.function == "allocate_known" for frame in capture.peak_stacks()[0].frames)
    # Stopped already: nothing is left to detach.
    late = memprof("detach", str(target.pid), "--method", method)
    assert_one_line_error(late, "not tracked by memprof attach")
    assert target.quit() == 0


def test_detach_of_a_process_never_attached_says_so(memprof, method, target):
    result = memprof("detach", str(target.pid), "--method", method)
    assert_one_line_error(result, f"pid {target.pid}", "not tracked by memprof attach", "nothing to detach")
    assert target.quit() == 0


def test_a_process_tracked_by_memprof_run_is_refused_by_name(memprof, method, tmp_path):
    program = tmp_path / "loop.py"
    program.write_text("import time\nprint('ready', flush=True)\nwhile True:\n    x = [0] * 99\n    time.sleep(0.01)\n")
    from tests.cli.conftest import memprof_command
    from tests.conftest import subprocess_env

    runner = subprocess.Popen(
        [*memprof_command(), "run", "-q", "-o", "run.bin", str(program)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert runner.stdout.readline().strip() == "ready"
        attach = memprof("attach", str(runner.pid), "-o", "a.bin", "--method", method)
        assert_one_line_error(attach, "already tracked by memprof", "the program started itself")
        detach = memprof("detach", str(runner.pid), "--method", method)
        assert_one_line_error(detach, "not attached by memprof attach")
    finally:
        runner.terminate()
        runner.wait(TIMEOUT_S)
        runner.stdout.close()


def test_a_process_that_is_not_python_is_refused(memprof, method, tmp_path):
    sleeper = subprocess.Popen(["sleep", "60"])
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    try:
        result = memprof(
            "attach",
            str(sleeper.pid),
            "-o",
            "x.bin",
            "--method",
            method,
            "--timeout",
            "3",
            env=subprocess_env(TMPDIR=str(own_tmp)),
        )
        assert_one_line_error(result, f"pid {sleeper.pid}")
        if method == "gdb":
            assert "not a Python process" in result.stderr
            assert not list(own_tmp.iterdir())  # nothing was given to the process: nothing is left
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("attach", "999999999", "-o", "x.bin"), ("no process with pid 999999999",)),
        (("detach", "999999999"), ("no process with pid 999999999",)),
        (("attach", "1", "--timeout", "0"), ("--timeout 0", "positive")),
        (("attach", "1", "--duration", "-1"), ("--duration -1", "positive")),
        (("attach", "1", "--live-port", "80"), ("--live-port and --live-host go with --live-remote",)),
    ],
)
def test_bad_input_is_one_line(memprof, args, fragments):
    assert_one_line_error(memprof(*args), *fragments)


def test_an_existing_capture_file_needs_force(memprof, tmp_path):
    (tmp_path / "taken.bin").write_bytes(b"x")
    result = memprof("attach", str(1), "-o", "taken.bin")
    assert_one_line_error(result, "taken.bin already exists", "--force")
    assert (tmp_path / "taken.bin").read_bytes() == b"x"


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python has sys.remote_exec")
def test_remote_exec_before_314_is_refused_with_the_version(memprof):
    result = memprof("attach", "1", "-o", "x.bin", "--method", "remote_exec")
    assert_one_line_error(result, "--method remote_exec needs Python 3.14")


def test_help_names_both_mechanisms(memprof):
    for command in ("attach", "detach"):
        result = memprof(command, "--help")
        assert result.returncode == 0
        assert "sys.remote_exec" in result.stdout and "gdb" in result.stdout


@pytest.mark.parametrize("stop_by", ["detach", "ctrl-c"])
def test_live_remote_streams_the_attached_capture_to_a_viewer_until_tracking_stops(
    memprof, method, target, tmp_path, stop_by
):
    from tests.cli.conftest import memprof_command
    from tests.live.conftest import read_port

    before = target.state()
    attach = subprocess.Popen(
        [*memprof_command(), "attach", str(target.pid), "--live-remote", "--method", method],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    received = bytearray()
    try:
        port = read_port(attach)
        viewer = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        reader = threading.Thread(target=lambda: received.extend(_read_all(viewer)), daemon=True)
        reader.start()
        assert "streaming pid" in attach.stderr.readline()
        time.sleep(0.5)
        if stop_by == "detach":
            detached = memprof("detach", str(target.pid), "--method", method, timeout=TIMEOUT_S)
            assert detached.returncode == 0, detached.stderr
        else:
            attach.send_signal(signal.SIGINT)  # Ctrl-C on the attaching memprof detaches
        assert attach.wait(TIMEOUT_S) == 0
        reader.join(TIMEOUT_S)
        viewer.close()
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
        attach.stderr.close()
    assert hooks_of(target.state()) == hooks_of(before)
    # The viewer got exactly a capture file's bytes, from the header to the end of tracking.
    (tmp_path / "streamed.bin").write_bytes(bytes(received))
    capture = Capture.open(tmp_path / "streamed.bin")
    assert not capture.truncated
    assert any(frame.function == "allocate_known" for frame in capture.peak_stacks()[0].frames)
    assert not list(tmp_path.glob("memprof-attach*.bin"))  # no -o: nothing kept here
    assert target.quit() == 0


def _read_all(connection: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
