"""Aggregated captures: the same answers as the full capture, in a file a fraction of its size."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import lz4.frame
import pytest

from pytest_memprof import Capture, Tracker, TrackerError
from pytest_memprof.aggregate import write_aggregated_capture
from pytest_memprof.errors import CaptureError
from tests.test_capture import read_everything

MiB = 2**20


def churn():
    kept = []
    for i in range(2000):
        temporary = bytearray(1000 + i)
        if i % 10 == 0:
            kept.append(temporary)
    return kept


def big():
    return bytearray(30 * MiB)


def workload():
    kept = churn()
    worker = threading.Thread(target=lambda: [bytes(5000) for _ in range(100)], name="agg-worker")
    worker.start()
    worker.join()
    peak = big()
    del peak
    return kept


def every_answer(capture: Capture) -> dict:
    def rows(stats):
        return sorted((tuple(map(str, s.frames)), s.thread_id, s.allocator, s.bytes, s.count) for s in stats)

    return {
        "figures": (
            capture.peak_bytes,
            capture.leaked_bytes,
            capture.total_allocations,
            capture.total_bytes,
            capture.unmatched_frees,
            capture.peak_time_s,
            capture.duration,
            capture.truncated,
        ),
        "peak": rows(capture.peak_stacks(merge_threads=False, merge_allocators=False)),
        "leaks": rows(capture.leak_stacks(merge_threads=False, merge_allocators=False)),
        "total": rows(capture.total_stacks(merge_threads=False, merge_allocators=False)),
        "temporary": rows(capture.temporary_stacks(merge_threads=False, merge_allocators=False)),
        "merged": rows(capture.peak_stacks()),
        "timeline": capture.timeline(),
        "threads": capture.threads(),
        "histogram": capture.size_histogram(),
        "allocators": capture.allocator_totals(),
    }


@pytest.fixture(scope="module")
def full_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("aggregate") / "full.bin"
    with Tracker(path):
        kept = workload()
        del kept
    return path


def test_an_aggregated_capture_answers_exactly_as_the_full_one(full_capture, tmp_path):
    full = Capture.open(full_capture)
    aggregated_path = tmp_path / "aggregated.bin"
    write_aggregated_capture(aggregated_path, full._reader, {"command_line": "test"})
    aggregated = Capture.open(aggregated_path)
    assert aggregated.metadata.aggregated
    assert every_answer(aggregated) == every_answer(full)
    assert aggregated_path.stat().st_size < full_capture.stat().st_size / 5


def test_tracking_with_aggregate_sees_the_peak_and_its_stack(tmp_path):
    out = tmp_path / "live.bin"
    with Tracker(out, aggregate=True):
        kept = workload()  # still alive at stop: the leaks
    capture = Capture.open(out)
    assert capture.metadata.aggregated and not capture.truncated
    assert 30 * MiB <= capture.peak_bytes < 31 * MiB
    assert capture.peak_stacks()[0].location.function == "big"
    # 200 kept bytearrays: an object and a buffer each, and the list that holds them.
    assert 400 <= sum(s.count for s in capture.leak_stacks() if s.location and s.location.function == "churn") < 420
    assert "agg-worker" in {thread.name for thread in capture.threads()}
    # Our own draining thread is not in the capture.
    assert "memprof-aggregator" not in {thread.name for thread in capture.threads()}
    assert len(capture.timeline()) >= 1
    del kept
    with pytest.raises(CaptureError, match="aggregated"):
        capture.temporal_stacks()


@pytest.fixture(scope="module")
def cpplib(tmp_path_factory):
    from tests.native_lib import build_cpp, load_cpp

    return load_cpp(build_cpp(tmp_path_factory.mktemp("aggregate_cpp")))


def native_workload(cpplib):
    import ctypes

    raw = ctypes.c_void_p()
    block = cpplib.memprof_test_entry(300_000, ctypes.byref(raw))  # new[] and malloc of 2,400,000 B each
    kept = workload()
    cpplib.memprof_test_release(block, raw)
    return kept


def test_a_native_capture_aggregated_answers_exactly_as_the_full_one(cpplib, tmp_path):
    full_path = tmp_path / "full.bin"
    with Tracker(full_path, native=True):
        kept = native_workload(cpplib)
        del kept
    full = Capture.open(full_path)
    aggregated_path = tmp_path / "aggregated.bin"
    write_aggregated_capture(aggregated_path, full._reader, {"command_line": "test", "native": True})
    aggregated = Capture.open(aggregated_path)
    assert aggregated.metadata.aggregated and aggregated.metadata.native
    assert every_answer(aggregated) == every_answer(full)
    # Before: the hybrid stacks' ids were written as they were and read as unknown Python stacks.
    assert any(frame.native for stat in aggregated.total_stacks() for frame in stat.frames)


def test_tracking_native_with_aggregate_keeps_the_c_frames_under_the_python_caller(cpplib, tmp_path):
    from tests.native_lib import marked_lines

    out = tmp_path / "native.bin"
    # Before: TrackerError "aggregated captures do not keep native stacks yet".
    with Tracker(out, aggregate=True, native=True):
        kept = native_workload(cpplib)
    del kept
    capture = Capture.open(out)
    assert capture.metadata.aggregated and capture.metadata.native and not capture.truncated
    lines = marked_lines()
    found = [stat for stat in capture.total_stacks() if stat.bytes == 2_400_000
             and any(frame.native and frame.line == lines["malloc"] for frame in stat.frames)]
    assert len(found) == 1, [[frame.function for frame in stat.frames] for stat in capture.total_stacks()[:5]]
    functions = [frame.function for frame in found[0].frames]
    assert functions.index("native_workload") < functions.index("memprof_test_entry"), functions
    assert 30 * MiB <= capture.peak_bytes < 31 * MiB + 5 * 2_400_000


def test_aggregate_and_follow_fork_need_a_file(tmp_path):
    with pytest.raises(TrackerError, match="needs a file"):
        Tracker(None, aggregate=True).start()
    with pytest.raises(TrackerError, match="needs a file"):
        Tracker(None, follow_fork=True).start()
    assert not Tracker.is_active()


FORKING = """
    import multiprocessing, os, sys
    from pytest_memprof import Tracker

    def in_the_parent():
        return bytearray(3 * 2**20)

    def in_a_forked_child():
        return bytearray(5 * 2**20)

    def in_a_child_ending_at_once():
        return bytearray(11 * 2**20)

    def in_a_process():
        kept = bytearray(7 * 2**20)

    def in_a_pool_worker(i):
        return len(bytearray(9 * 2**20))

    if __name__ == "__main__":
        context = multiprocessing.get_context("fork")
        tracker = Tracker({out!r}, aggregate=True, follow_fork=True).start()
        kept = in_the_parent()
        pid = os.fork()
        if pid == 0:
            kept_by_child = in_a_forked_child()
            sys.exit(0)  # a plain fork child leaves through atexit
        os.waitpid(pid, 0)
        quick = os.fork()
        if quick == 0:
            kept_by_child = in_a_child_ending_at_once()
            os._exit(0)  # within a millisecond: before any snapshot
        os.waitpid(quick, 0)
        process = context.Process(target=in_a_process)  # leaves through os._exit
        process.start()
        process.join()
        pool = context.Pool(2)
        pool.map(in_a_pool_worker, range(4))
        pool.close()
        pool.join()
        print(pid, quick, process.pid, *[worker.pid for worker in pool._pool])
        tracker.stop()
"""


def test_aggregate_with_follow_fork_gives_each_child_its_own_whole_capture(tmp_path):
    out = tmp_path / "agg.bin"
    # Before: TrackerError "aggregated captures cannot follow forks".
    result = run_aggregating(tmp_path, FORKING.format(out=str(out)))
    assert result.returncode == 0, result.stderr
    fork_pid, quick_pid, process_pid, *worker_pids = map(int, result.stdout.split())
    parent = Capture.open(out)
    assert parent.metadata.aggregated and not parent.truncated
    assert {s.location.function for s in parent.peak_stacks() if s.bytes >= 2**20} == {"in_the_parent"}

    def functions_of(pid: int) -> set[str]:
        capture = Capture.open(tmp_path / f"agg.bin.{pid}")
        # Whole, not a snapshot: each child finished its own capture on its way out.
        assert capture.metadata.aggregated and not capture.truncated and capture.metadata.pid == pid
        return {s.location.function for s in capture.total_stacks() if s.bytes >= 2**20 and s.location}

    assert functions_of(fork_pid) == {"in_a_forked_child"}
    assert functions_of(quick_pid) == {"in_a_child_ending_at_once"}
    assert functions_of(process_pid) == {"in_a_process"}
    assert set().union(*map(functions_of, worker_pids)) == {"in_a_pool_worker"}
    # Starting a child's own aggregator (in our fork hook) is not the child's work.
    for pid in (fork_pid, quick_pid, process_pid, *worker_pids):
        frames = {frame.file for s in Capture.open(tmp_path / f"agg.bin.{pid}").total_stacks() for frame in s.frames}
        assert not any("pytest_memprof" in file for file in frames), (pid, frames)
    # Nothing of the parent's is in a child's capture, and no snapshot was left half-written.
    assert not list(tmp_path.glob("*.partial"))


def test_memprof_run_aggregate_then_reports(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("def make():\n    return bytearray(20_000_000)\nkept = make()\n")
    out = tmp_path / "prog.bin"
    cli = [sys.executable, "-m", "pytest_memprof"]
    # cwd: `python -m` puts it first on sys.path, and the source tree may have no built extension.
    result = subprocess.run(
        [*cli, "run", "-q", "--aggregate", "-o", str(out), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    stats = subprocess.run([*cli, "stats", str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "make" in stats.stdout
    flamegraph = subprocess.run(
        [*cli, "flamegraph", "-o", str(tmp_path / "f.html"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert flamegraph.returncode == 0, flamegraph.stderr
    temporal = subprocess.run(
        [*cli, "flamegraph", "--temporal", "-o", str(tmp_path / "t.html"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert temporal.returncode != 0 and "aggregated" in temporal.stderr and "Traceback" not in temporal.stderr


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_aggregated_records_are_rejected_or_read(full_capture, tmp_path, data):
    source = tmp_path / "source.bin"
    write_aggregated_capture(source, Capture.open(full_capture)._reader, {})
    raw = source.read_bytes()
    (header_length,) = struct.unpack_from("<I", raw, 12)
    prefix, records = raw[: 16 + header_length], bytearray(lz4.frame.decompress(raw[16 + header_length :]))
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(records) - 1))
        records[position] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 80, 81, 82, 70]))
    damaged = tmp_path / "damaged.bin"
    damaged.write_bytes(prefix + lz4.frame.compress(bytes(records)))
    read_everything(damaged)


def run_aggregating(tmp_path, body: str) -> subprocess.CompletedProcess:
    import textwrap

    from tests.conftest import subprocess_env

    script = tmp_path / "agg.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=tmp_path
    )


@pytest.mark.parametrize("end", ["os._exit(0)", "os.kill(os.getpid(), signal.SIGKILL)"], ids=["_exit", "SIGKILL"])
def test_an_aggregating_program_that_exits_early_or_dies_keeps_its_figures(tmp_path, end):
    out = tmp_path / "agg.bin"
    result = run_aggregating(
        tmp_path,
        f"""
        import os, signal, time
        from pytest_memprof import Tracker

        def kept_before_death():
            return bytearray(6 * 2**20)

        out = {str(out)!r}
        Tracker(out, aggregate=True).start()
        kept = kept_before_death()
        # Snapshots come every few tenths of a second; a loaded machine may be slower, so wait for
        # the second one written after the allocation (the first may have been taken before it).
        after, seen, deadline = time.time_ns(), set(), time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            try:
                mtime = os.stat(out).st_mtime_ns
            except FileNotFoundError:
                mtime = 0
            if mtime > after:
                seen.add(mtime)
            time.sleep(0.02)
        {end}
    """,
    )
    assert result.returncode in (0, -9), result.stderr
    # Before: no file at all.
    capture = Capture.open(out)
    # os._exit passes through the tracker's _exit() hook, which writes the capture whole; a
    # SIGKILL leaves the last snapshot, which reads as truncated.
    assert capture.metadata.aggregated and capture.truncated == (end != "os._exit(0)")
    assert capture.peak_bytes >= 6 * MiB
    assert capture.peak_stacks()[0].location.function == "kept_before_death"
    assert not list(tmp_path.glob("*.partial"))


def test_memprof_stats_on_an_aggregated_capture_cut_short_gives_the_figures_flagged_truncated(tmp_path):
    from tests.conftest import subprocess_env

    whole = tmp_path / "whole.bin"
    with Tracker(whole, aggregate=True):
        workload()
    data = whole.read_bytes()
    header_end = 16 + struct.unpack_from("<I", data, 12)[0]
    records = lz4.frame.decompress(data[header_end:])
    cut = tmp_path / "cut.bin"
    # Stacks kept, the timeline's end and the summary lost: a file cut while it was written. The
    # trailer, the summary (65 histogram counts, mostly 0: a byte each) and a few timeline points
    # take about 100 bytes; the last 200 reach into the stacks. (Cutting 800 left none on 3.14,
    # whose sys.monitoring stacks are fewer: 41 AGG_STACK records in 3.7 KB.)
    assert len(records) > 1000
    cut.write_bytes(data[:header_end] + lz4.frame.compress(records[:-200]))
    figures = Capture.open(cut)
    assert figures.truncated and 0 < figures.total_allocations < Capture.open(whole).total_allocations
    result = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "stats", str(cut)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        cwd=tmp_path,
    )
    # Before: ValueError: max() arg is an empty sequence.
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "truncated" in result.stdout
    assert "Allocations by allocator" in result.stdout


# A program under `memprof run --aggregate` that says "ready" once its allocation is made, then
# waits (WAIT) to be signalled.
SIGNALLED = """
import sys, time

def kept_when_signalled():
    return bytearray(7 * 2**20)

kept = kept_when_signalled()
{prepare}
print("ready", flush=True)
{wait}
"""
SLEEP = "time.sleep(120)"
BUSY = "total = 0\nwhile True:\n    total += 1"


def memprof_run_until_ready(
    tmp_path, program: str, *options: str, stdin: int | None = None
) -> tuple[subprocess.Popen, Path]:
    """``memprof run --aggregate`` of ``program``, once it has printed "ready"."""
    from tests.conftest import subprocess_env

    script = tmp_path / "signalled.py"
    script.write_text(program)
    out = tmp_path / "signalled.bin"
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_memprof", "run", "-q", "--aggregate", *options, "-o", str(out), str(script)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        cwd=tmp_path,
    )
    assert process.stdout.readline() == "ready\n", process.communicate(timeout=60)
    return process, out


def ended(process: subprocess.Popen) -> tuple[int, str, str]:
    """The exit status, output and errors of ``process``, killed if it hangs."""
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"the process hung after the signal: {stderr}")
    return process.returncode, stdout, stderr


def stats_json(path: Path) -> dict:
    """``memprof stats --json`` of ``path``."""
    from tests.conftest import subprocess_env

    result = subprocess.run([sys.executable, "-m", "pytest_memprof", "stats", "--json", str(path)],
                            capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_whole_with_the_kept_allocation(path: Path) -> None:
    stats = stats_json(path)
    assert not stats["truncated"] and not stats["damaged"]
    # Among the top, not first: on 3.15 printing a KeyboardInterrupt's traceback imports
    # dataclasses (through _colorize), which allocates more than 7 MiB in all.
    kept = [top for top in stats["top_by_bytes"][:5] if top["function"] == "kept_when_signalled"]
    assert kept and kept[0]["bytes"] >= 7 * MiB, stats["top_by_bytes"]
    assert stats["leaked_bytes"] >= 7 * MiB


@pytest.mark.parametrize("wait", [SLEEP, BUSY], ids=["sleeping", "busy"])
def test_memprof_run_aggregate_killed_by_sigterm_writes_its_capture_whole_and_dies_of_it(tmp_path, wait):
    process, out = memprof_run_until_ready(tmp_path, SIGNALLED.format(prepare="", wait=wait))
    process.send_signal(signal.SIGTERM)
    status, _, stderr = ended(process)
    assert status == -signal.SIGTERM, stderr
    # Before: the last snapshot, truncated.
    assert_whole_with_the_kept_allocation(out)


def test_the_programs_own_sigterm_handler_still_runs_and_the_capture_is_whole(tmp_path):
    # os.write, not print: the signal may come while the main thread is still inside print("ready"),
    # and a second print into the same buffer would raise "reentrant call".
    handled = "import os, signal\n\ndef handler(signo, frame):\n    os.write(1, b'handled\\n')\n    sys.exit(3)\n\n" \
              "signal.signal(signal.SIGTERM, handler)"
    process, out = memprof_run_until_ready(tmp_path, SIGNALLED.format(prepare=handled, wait=SLEEP))
    process.send_signal(signal.SIGTERM)
    status, stdout, stderr = ended(process)
    assert (status, stdout) == (3, "handled\n"), stderr
    assert_whole_with_the_kept_allocation(out)


def signalling_itself(tmp_path, out: Path, signum: signal.Signals, action: str, wait: str):
    """A program that sets ``action`` for ``signum``, starts aggregating into ``out`` and signals itself."""
    return run_aggregating(
        tmp_path,
        f"""
        import os, signal, sys, time
        from pytest_memprof import Tracker

        def kept_when_signalled():
            return bytearray(7 * 2**20)

        signal.signal(signal.{signum.name}, {action})
        Tracker({str(out)!r}, aggregate=True).start()
        kept = kept_when_signalled()
        os.kill(os.getpid(), signal.{signum.name})
        {wait}
    """,
    )


def test_a_program_handling_sigterm_before_tracking_keeps_its_handler(tmp_path):
    out = tmp_path / "agg.bin"
    result = signalling_itself(tmp_path, out, signal.SIGTERM, "lambda signo, frame: sys.exit(3)",
                               "signal.pause()  # the handler runs here")
    assert result.returncode == 3, result.stderr
    assert_whole_with_the_kept_allocation(out)


def test_memprof_run_aggregate_interrupted_by_sigint_writes_its_capture_whole(tmp_path):
    process, out = memprof_run_until_ready(tmp_path, SIGNALLED.format(prepare="", wait=SLEEP))
    process.send_signal(signal.SIGINT)
    status, _, stderr = ended(process)
    # Python's own SIGINT handler: KeyboardInterrupt, which memprof run reports as a shell does.
    assert status == 130 and "KeyboardInterrupt" in stderr, stderr
    assert_whole_with_the_kept_allocation(out)


def test_sigint_with_its_default_action_writes_the_capture_whole_and_kills(tmp_path):
    out = tmp_path / "agg.bin"
    # SIG_DFL: no KeyboardInterrupt, SIGINT kills.
    result = signalling_itself(tmp_path, out, signal.SIGINT, "signal.SIG_DFL", "time.sleep(60)")
    assert result.returncode == -signal.SIGINT, result.stderr
    # Before: the last snapshot, truncated.
    assert_whole_with_the_kept_allocation(out)


def test_a_program_holding_the_gil_when_sigterm_comes_still_dies_of_it(tmp_path):
    # ctypes.PyDLL keeps the GIL across the call, and the call itself says "ready" (through the
    # shell it runs), so the signal always finds the GIL held. The shell then waits for its stdin,
    # which this test closes only once the process is dead: the aggregator thread cannot run to
    # write the capture, and the watchdog must end the process. SIGTERM is blocked in the main
    # thread so that it goes to another and system() is not interrupted.
    stuck = "import ctypes, signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\ntime.sleep(0.5)"
    wait = "ctypes.PyDLL(None).system(b'echo ready; read line')"
    process, out = memprof_run_until_ready(
        tmp_path, SIGNALLED.format(prepare=stuck, wait=wait).replace('print("ready", flush=True)', ""),
        stdin=subprocess.PIPE,
    )
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        status = None
        process.kill()
    _, stderr = process.communicate()  # closes the shell's stdin: it ends
    assert status == -signal.SIGTERM, stderr
    # The last snapshot stays, as it would for SIGKILL.
    stats = stats_json(out)
    assert stats["truncated"] and stats["top_by_bytes"][0]["function"] == "kept_when_signalled"


POOL = """
import multiprocessing, os

def in_a_pool_worker(i):
    return len(bytearray(9 * 2**20))

if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(in_a_pool_worker, range(4))
        workers = list(pool._pool)
    # Leaving the with block terminates the pool: its workers are sent SIGTERM.
    print(*[worker.pid for worker in workers])
    print(*[worker.exitcode for worker in workers])
"""


def test_a_pool_under_aggregate_follow_fork_leaves_each_worker_a_whole_capture(tmp_path):
    from tests.conftest import subprocess_env

    script = tmp_path / "pool.py"
    script.write_text(POOL)
    out = tmp_path / "pool.bin"
    result = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "run", "-q", "--aggregate", "--follow-fork", "-o", str(out),
         str(script)],
        capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    pids, exit_codes = result.stdout.splitlines()
    assert set(exit_codes.split()) <= {"0", str(-signal.SIGTERM)}, exit_codes
    functions = set()
    for pid in map(int, pids.split()):
        capture = Capture.open(tmp_path / f"pool.bin.{pid}")
        # Before: the workers sent SIGTERM left their last snapshot, truncated.
        assert capture.metadata.aggregated and not capture.truncated and capture.metadata.pid == pid
        functions |= {s.location.function for s in capture.total_stacks() if s.bytes >= 2**20 and s.location}
    assert functions == {"in_a_pool_worker"}
    assert not Capture.open(out).truncated


def _write_events(folder: Path, body) -> list[tuple[int, str]]:
    """(mask, name) of the inotify events in `folder` while `body()` runs."""
    import ctypes
    import os
    import select

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        pytest.skip("inotify is not available here")
    try:
        if libc.inotify_add_watch(fd, str(folder).encode(), 0xFFF) < 0:  # IN_ALL_EVENTS
            pytest.skip("inotify cannot watch the test folder")
        body()
        events, data = [], b""
        while select.select([fd], [], [], 0.2)[0]:
            data += os.read(fd, 1 << 16)
        while data:
            _, mask, _, length = struct.unpack_from("iIII", data)
            name = data[16:16 + length].rstrip(b"\0").decode()
            events.append((mask, name))
            data = data[16 + length:]
        return events
    finally:
        os.close(fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and O_TMPFILE are Linux's")
def test_a_capture_is_never_written_under_its_partial_name(tmp_path):
    # A process killed while writing its capture (SIGKILL during an aggregating run's snapshot)
    # must leave nothing beside it: the records go to an unnamed file, named only once whole.
    out = tmp_path / "agg.bin"

    def record():
        with Tracker(out, aggregate=True):
            workload()

    events = _write_events(tmp_path, record)
    in_modify, in_close_write, in_create = 0x2, 0x8, 0x100
    written = [(mask, name) for mask, name in events
               if name.endswith(".partial") and mask & (in_modify | in_close_write)]
    assert any(mask & in_create and name == "agg.bin.partial" for mask, name in events), events  # named, then renamed
    assert written == [], written
    assert Capture.open(out).total_allocations > 0 and not list(tmp_path.glob("*.partial"))
