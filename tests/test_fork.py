"""Forking inside a tracked process: no deadlock, the parent's capture whole, followed children readable.

Every fork happens in a subprocess with a timeout, so a deadlock fails its test instead of hanging
the suite. The captures are read back here, in the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_memprof import Capture
from tests.conftest import subprocess_env

TIMEOUT_S = 90

# Shared by every script: sizes only one allocation site uses, so a capture can be searched by size.
PRELUDE = """
import json, os, sys
from pytest_memprof import Tracker

def parent_before_fork():
    return bytearray(3_000_017)

def parent_after_fork():
    return bytearray(4_000_037)

def child_allocates():
    return bytearray(5_000_011)
"""


def run_script(tmp_path: Path, body: str, *python_flags: str) -> subprocess.CompletedProcess:
    """Run PRELUDE + body in a fresh interpreter; a hang past TIMEOUT_S fails the test."""
    script = tmp_path / "forks.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = subprocess_env()
    try:
        result = subprocess.run(
            [sys.executable, *python_flags, str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT_S,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the tracked process did not finish in {TIMEOUT_S} s (deadlock?); stderr:\n{expired.stderr}")
    assert result.returncode == 0, result.stderr
    return result


def functions_with_size(stats, size: int) -> list[str]:
    """Functions of the stacks whose bytes are a multiple-ish of `size` (object header included)."""
    return [s.location.function for s in stats if s.location and size <= s.bytes < size + 4096]


def whole(path: Path) -> Capture:
    capture = Capture.open(path)
    assert not capture.truncated, f"{path} is truncated ({capture.problem})"
    return capture


@pytest.mark.parametrize("follow_fork", [False, True])
def test_os_fork_keeps_the_parent_capture_whole(tmp_path, follow_fork):
    out = tmp_path / "parent.bin"
    result = run_script(
        tmp_path,
        f"""
        tracker = Tracker({str(out)!r}, follow_fork={follow_fork}).start()
        kept_before = parent_before_fork()
        pid = os.fork()
        if pid == 0:
            kept_child = child_allocates()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        kept_after = parent_after_fork()
        tracker.stop()
        print(json.dumps({{"child": pid, "status": status}}))
    """,
    )
    info = json.loads(result.stdout)
    assert info["status"] == 0
    parent = whole(out)
    leaks = parent.leak_stacks()
    assert functions_with_size(leaks, 3_000_017) == ["parent_before_fork"]
    assert functions_with_size(leaks, 4_000_037) == ["parent_after_fork"]
    assert not functions_with_size(parent.total_stacks(), 5_000_011), "the child's allocation is in the parent"
    child_capture = tmp_path / f"parent.bin.{info['child']}"
    assert child_capture.exists() == follow_fork


def test_followed_child_ending_in_os_exit_writes_a_whole_capture_of_its_own(tmp_path):
    out = tmp_path / "followed.bin"
    result = run_script(
        tmp_path,
        f"""
        tracker = Tracker({str(out)!r}, follow_fork=True).start()
        kept_before = parent_before_fork()
        pid = os.fork()
        if pid == 0:
            kept_child = child_allocates()
            os._exit(0)  # no atexit, no stop(): the _exit hook finishes the stream
        os.waitpid(pid, 0)
        tracker.stop()
        print(pid)
    """,
    )
    child = whole(tmp_path / f"followed.bin.{int(result.stdout)}")
    assert child.metadata.pid == int(result.stdout)
    assert functions_with_size(child.leak_stacks(), 5_000_011) == ["child_allocates"]
    # The child starts a new stream: what the parent allocated before the fork is not in it.
    assert not functions_with_size(child.total_stacks(), 3_000_017)


def test_followed_child_ending_normally_writes_a_whole_capture(tmp_path):
    out = tmp_path / "normal.bin"
    result = run_script(
        tmp_path,
        f"""
        tracker = Tracker({str(out)!r}, follow_fork=True).start()
        pid = os.fork()
        if pid == 0:
            kept_child = child_allocates()
            sys.exit(0)  # atexit stops the child's tracker
        os.waitpid(pid, 0)
        tracker.stop()
        print(pid)
    """,
    )
    child = whole(tmp_path / f"normal.bin.{int(result.stdout)}")
    assert functions_with_size(child.total_stacks(), 5_000_011) == ["child_allocates"]


@pytest.mark.parametrize("follow_fork", [False, True])
def test_repeated_forks_while_other_threads_allocate_do_not_deadlock(tmp_path, follow_fork):
    # Other threads hold the tracker lock, the allocator's locks and the patch lock at random
    # moments; each fork must still leave the child able to allocate and exit.
    out = tmp_path / "busy.bin"
    result = run_script(
        tmp_path,
        f"""
        import threading, ctypes
        stop = threading.Event()

        def churn():
            while not stop.is_set():
                [bytearray(200) for _ in range(200)]

        def load_libraries():
            while not stop.is_set():
                ctypes.CDLL("libm.so.6")  # dlopen: a patch pass in this thread

        tracker = Tracker({str(out)!r}, follow_fork={follow_fork}).start()
        threads = [threading.Thread(target=churn) for _ in range(3)] + [threading.Thread(target=load_libraries)]
        for thread in threads:
            thread.start()
        children = []
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                kept_child = child_allocates()
                os._exit(7)
            children.append(pid)
        statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) if hasattr(os, "waitstatus_to_exitcode")
                    else os.waitpid(pid, 0)[1] >> 8 for pid in children]
        stop.set()
        for thread in threads:
            thread.join()
        kept_after = parent_after_fork()
        tracker.stop()
        print(json.dumps({{"children": children, "statuses": statuses}}))
    """,
    )
    info = json.loads(result.stdout)
    assert info["statuses"] == [7] * 20
    parent = whole(out)
    assert functions_with_size(parent.leak_stacks(), 4_000_037) == ["parent_after_fork"]
    if follow_fork:
        for pid in info["children"]:
            child = whole(tmp_path / f"busy.bin.{pid}")
            assert "child_allocates" in functions_with_size(child.leak_stacks(), 5_000_011)


POOL_SCRIPT = """
    import multiprocessing

    def work(index):
        return len(child_allocates()) + index

    if __name__ == "__main__":
        tracker = Tracker({out!r}, follow_fork={follow_fork}).start()
        pool = multiprocessing.get_context("fork").Pool(2)
        results = pool.map(work, range(6))
        # close + join: the workers take their sentinel and end in os._exit. (A `with Pool()`
        # block terminates them with SIGTERM instead, which leaves their captures truncated.)
        pool.close()
        pool.join()
        kept_after = parent_after_fork()
        tracker.stop()
        print(json.dumps({{"results": results, "workers": [p.pid for p in pool._pool]}}))
"""


@pytest.mark.parametrize("follow_fork", [False, True])
def test_multiprocessing_fork_pool_in_a_tracked_process(tmp_path, follow_fork):
    out = tmp_path / "pool.bin"
    result = run_script(tmp_path, POOL_SCRIPT.format(out=str(out), follow_fork=follow_fork))
    info = json.loads(result.stdout)
    assert info["results"] == [5_000_011 + i for i in range(6)]
    parent = whole(out)
    assert functions_with_size(parent.leak_stacks(), 4_000_037) == ["parent_after_fork"]
    assert not functions_with_size(parent.total_stacks(), 5_000_011), "the workers' allocations are in the parent"
    children = sorted(tmp_path.glob("pool.bin.*"))
    if not follow_fork:
        assert children == []
        return
    assert len(children) == 2
    allocated = 0
    for path in children:
        child = whole(path)
        allocated += sum(
            s.bytes for s in child.total_stacks() if s.location and s.location.function == "child_allocates"
        )
    # Each task's 5 MB buffer (and its small bytearray object) is in exactly one worker's capture.
    assert 6 * 5_000_011 <= allocated < 6 * (5_000_011 + 4096)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python 3.12 added the fork-with-threads warning")
def test_forking_a_tracked_single_threaded_program_raises_no_thread_warning(tmp_path):
    # Our sampler and writer threads are joined around os.fork(), so Python 3.12+ sees only the
    # program's own thread and does not warn; with -W error a warning would fail the script.
    out = tmp_path / "warn.bin"
    result = run_script(
        tmp_path,
        f"""
        tracker = Tracker({str(out)!r}).start()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        tracker.stop()
    """,
        "-W",
        "error::DeprecationWarning",
    )
    assert "DeprecationWarning" not in result.stderr
    whole(out)


@pytest.mark.parametrize("follow_fork", [False, True])
def test_another_atfork_handler_that_allocates_does_not_deadlock_the_fork(tmp_path, follow_fork):
    # Our prepare handler takes the tracker lock; handlers registered before ours run after it,
    # and OpenBLAS's (numpy's) frees memory there: the free used to wait for that lock forever.
    from tests.native_lib import build

    library = build(tmp_path)
    run_script(tmp_path, f"""
        from tests.native_lib import load
        lib = load({str(library)!r})
        assert lib.register_allocating_atfork() == 0
        with Tracker("forks.bin", follow_fork={follow_fork}):
            pid = os.fork()
            if pid == 0:
                child_allocates()
                os._exit(0)
            assert os.waitpid(pid, 0)[1] == 0
    """)
    whole(tmp_path / "forks.bin")
