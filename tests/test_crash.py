"""A tracked process that dies: the capture is readable up to the last flushed block."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from pytest_memprof import Capture
from tests.conftest import subprocess_env


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=subprocess_env(),
                          timeout=60, cwd=tmp_path)


def test_a_process_killed_mid_capture_leaves_a_truncated_readable_capture(tmp_path):
    out = tmp_path / "dies.bin"
    result = run_script(tmp_path, f"""
        import os, time
        from pytest_memprof import Tracker

        def keep_before_crash():
            return bytearray(8 * 2**20)

        Tracker({str(out)!r}).start()
        kept = keep_before_crash()
        time.sleep(0.5)  # the writer flushes every 100 ms
        os.kill(os.getpid(), 9)
    """)
    assert result.returncode == -signal.SIGKILL
    capture = Capture.open(out)
    assert capture.truncated
    assert capture.peak_bytes >= 8 * 2**20
    assert capture.peak_stacks()[0].location.function == "keep_before_crash"


def test_memprof_stats_on_a_killed_process_capture_says_truncated(tmp_path):
    out = tmp_path / "dies.bin"
    run_script(tmp_path, f"""
        import os, time
        from pytest_memprof import Tracker
        Tracker({str(out)!r}).start()
        data = bytearray(2**20)
        time.sleep(0.3)
        os.kill(os.getpid(), 9)
    """)
    # cwd: `python -m` puts it first on sys.path, and the source tree may have no built extension.
    stats = subprocess.run([sys.executable, "-m", "pytest_memprof", "stats", str(out)], capture_output=True,
                           text=True, env=subprocess_env(), timeout=60, cwd=tmp_path)
    assert stats.returncode == 0
    assert "truncated" in stats.stdout
    assert "Traceback" not in stats.stderr


def test_another_profiler_replacing_ours_leaves_no_stale_frames_behind(tmp_path):
    out = tmp_path / "replaced.bin"
    result = run_script(tmp_path, f"""
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
    """)
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
