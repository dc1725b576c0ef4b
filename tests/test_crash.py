"""A tracked process that dies: the capture is readable up to the last flushed block."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_memprof import Capture
from tests.conftest import subprocess_env


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=subprocess_env(), timeout=60, cwd=tmp_path
    )


def test_a_process_killed_mid_capture_leaves_a_truncated_readable_capture(tmp_path):
    out = tmp_path / "dies.bin"
    result = run_script(
        tmp_path,
        f"""
        import os, time
        from pytest_memprof import Tracker

        def keep_before_crash():
            return bytearray(8 * 2**20)

        Tracker({str(out)!r}).start()
        kept = keep_before_crash()
        time.sleep(0.5)  # the writer flushes every 100 ms
        os.kill(os.getpid(), 9)
    """,
    )
    assert result.returncode == -signal.SIGKILL
    capture = Capture.open(out)
    assert capture.truncated
    assert capture.peak_bytes >= 8 * 2**20
    assert capture.peak_stacks()[0].location.function == "keep_before_crash"


def test_memprof_stats_on_a_killed_process_capture_says_truncated(tmp_path):
    out = tmp_path / "dies.bin"
    run_script(
        tmp_path,
        f"""
        import os, time
        from pytest_memprof import Tracker
        Tracker({str(out)!r}).start()
        data = bytearray(2**20)
        time.sleep(0.3)
        os.kill(os.getpid(), 9)
    """,
    )
    # cwd: `python -m` puts it first on sys.path, and the source tree may have no built extension.
    stats = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "stats", str(out)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        cwd=tmp_path,
    )
    assert stats.returncode == 0
    assert "truncated" in stats.stdout
    assert "Traceback" not in stats.stderr


def test_another_profiler_replacing_ours_leaves_no_stale_frames_behind(tmp_path):
    out = tmp_path / "replaced.bin"
    result = run_script(
        tmp_path,
        f"""
        import sys
        from pytest_memprof import Tracker, Capture

        def take_over():
            # This frame is on our shadow stack; it returns while another profiler is active,
            # so we never see it go, and CPython frees it.
            sys.setprofile(lambda *args: None)
            return [bytearray(64) for _ in range(10)]

        with Tracker({str(out)!r}):
            for _ in range(200):
                take_over()
                sys.setprofile(None)
                garbage = [bytearray(64) for _ in range(200)]  # reuses the freed frames' memory
            kept = bytearray(3 * 2**20)  # our stacks are stale: recorded, stack unknown
        capture = Capture.open({str(out)!r})
        big = [s for s in capture.leak_stacks() if s.bytes >= 3 * 2**20][0]
        print("FUNCTIONS", [frame.function for frame in big.frames])
    """,
    )
    assert result.returncode == 0, result.stderr
    # Recorded, and not pinned on a frame that returned long ago.
    assert "take_over" not in result.stdout.split("FUNCTIONS")[1]


def test_frames_on_the_stack_at_stop_are_released(tmp_path):
    import gc
    import weakref

    from pytest_memprof import Tracker

    class Payload:
        pass

    def holder():
        payload = Payload()
        with Tracker(tmp_path / "hold.bin"):
            pass  # holder's frame sits on the shadow stack while tracking
        return weakref.ref(payload)

    ref = holder()
    gc.collect()
    assert ref() is None, "the tracker kept a finished frame (and its locals) alive"


KEEP_AND_DIE = """
    import ctypes, os, signal, sys
    from pytest_memprof import Tracker

    def keep_before_signal():
        return bytearray(8 * 2**20)

    Tracker({out!r}).start()
    kept = keep_before_signal()
    {die}
"""


@pytest.mark.parametrize(
    ("die", "signo"),
    [
        ("os.kill(os.getpid(), signal.SIGTERM)", signal.SIGTERM),
        ("ctypes.string_at(0)", signal.SIGSEGV),
        ("os.abort()", signal.SIGABRT),
    ],
    ids=["SIGTERM", "SIGSEGV", "SIGABRT"],
)
def test_a_fatal_signal_flushes_the_capture_and_still_kills_the_process(tmp_path, die, signo):
    out = tmp_path / "dies.bin"
    # Within milliseconds of starting: before, the first flush came at 100 ms and the capture was empty.
    result = run_script(tmp_path, KEEP_AND_DIE.format(out=str(out), die=die))
    assert result.returncode == -signo, result.stderr
    capture = Capture.open(out)
    assert capture.truncated and not capture.damaged
    assert capture.peak_stacks()[0].location.function == "keep_before_signal"


def test_the_programs_own_signal_handler_still_runs_after_the_flush(tmp_path):
    out = tmp_path / "handled.bin"
    result = run_script(
        tmp_path,
        f"""
        import os, signal, sys
        from pytest_memprof import Tracker

        def handler(signo, frame):
            print("handled", signo)
            sys.exit(7)

        signal.signal(signal.SIGTERM, handler)  # before the tracker: ours chains to it
        tracker = Tracker({str(out)!r}).start()
        kept = bytearray(2**20)
        os.kill(os.getpid(), signal.SIGTERM)
    """,
    )
    assert result.returncode == 7, result.stderr
    assert f"handled {int(signal.SIGTERM)}" in result.stdout
    capture = Capture.open(out)  # the interpreter exited normally: the capture ends whole
    assert not capture.truncated and not capture.damaged
    assert capture.peak_bytes >= 2**20


def test_an_interrupt_the_program_catches_leaves_a_whole_capture_with_what_came_after(tmp_path):
    out = tmp_path / "interrupted.bin"
    result = run_script(
        tmp_path,
        f"""
        import os, signal
        from pytest_memprof import Tracker

        def after_interrupt():
            return bytearray(5 * 2**20)

        with Tracker({str(out)!r}):
            try:
                os.kill(os.getpid(), signal.SIGINT)  # the flush writes a block mid-stream
                while True:
                    pass
            except KeyboardInterrupt:
                pass
            kept = after_interrupt()
    """,
    )
    assert result.returncode == 0, result.stderr
    capture = Capture.open(out)
    assert not capture.truncated and not capture.damaged and capture.problem is None
    assert capture.peak_stacks()[0].location.function == "after_interrupt"


def test_pool_children_ended_by_terminate_keep_their_captures(tmp_path):
    out = tmp_path / "pool.bin"
    result = run_script(
        tmp_path,
        f"""
        import multiprocessing, time
        from pytest_memprof import Tracker

        def work_in_child(_):
            kept = bytearray(4 * 2**20)
            time.sleep(30)

        if __name__ == "__main__":
            multiprocessing.set_start_method("fork")
            with Tracker({str(out)!r}, follow_fork=True):
                pool = multiprocessing.Pool(2)
                pool.map_async(work_in_child, range(2))
                time.sleep(1.0)
                pool.terminate()  # SIGTERM to each worker
                pool.join()
    """,
    )
    assert result.returncode == 0, result.stderr
    children = [Capture.open(path) for path in tmp_path.glob("pool.bin.*")]
    assert len(children) == 2
    # Before: each child's capture was empty (nothing flushed before the SIGTERM).
    assert all(child.peak_bytes >= 4 * 2**20 for child in children)
