"""The session plugin: one tracker for the session, one window per tracked test, and the verdict.

Everything the session writes (summary, JUnit, CSV, baseline, GitHub output, HTML report) is an
output plugin of its own (outputs.py), fed through our hooks with what is decided here.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from .. import launcher
from .._reader import CaptureReader
from ..capture import Capture, metadata_from_header
from ..errors import TrackerError, UsageError
from ..tracker import Tracker
from . import options
from .markers import MemorySpec, garbage_count, spec_for
from .report import failure_message
from .results import TestMemoryResult
from .verdict import BaselineJudge, judge
from .window_capture import (
    FILE_STEM_KEY,
    capture_file_name,
    capture_file_stems,
    file_stem,
    window_header,
    write_window_capture,
)

__all__ = ["RESULT_KEY", "SPEC_KEY", "MemprofPlugin", "capture_file_name"]

RESULT_KEY = pytest.StashKey[TestMemoryResult]()
OVERHEAD_KEY = "memprof_overhead_s"  # an xdist worker's own cost, in its workeroutput
SPEC_KEY = pytest.StashKey[MemorySpec]()
OBJECTS_KEY = pytest.StashKey["list | None"]()  # limit_leaked_objects: what outlived the test function
# The window's capture when no file or page needs its header: stacks still start at the test.
_WINDOW_METADATA = metadata_from_header({"runner_files": list(launcher.PYTEST)})


class _Window:
    """The state of one test's tracking window."""

    def __init__(self, spec: MemorySpec, frames_before: int, nodes_before: int) -> None:
        self.spec = spec
        self.started = time.perf_counter()
        self.started_at = time.time()  # on the wall clock, which xdist's workers and controller share
        self.garbage_before = garbage_count()
        self.gc_collections = 0
        self.gc_collected = 0
        self.frames_before = frames_before  # tables a capture file of the window must repeat
        self.nodes_before = nodes_before


class MemprofPlugin:
    """Session state of pytest-memprof: the tracking window and the verdict; registered at configure time."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.default_limit = options.resolve(config, "memprof_limit")
        html_dir = options.resolve(config, "memprof_html")
        self.track_all = bool(options.resolve(config, "memprof")) or self.default_limit is not None or bool(html_dir)
        self.fixtures = bool(options.resolve(config, "memprof_fixtures"))
        self.max_stacks = options.resolve(config, "memprof_stacks")
        self.max_frames = options.resolve(config, "memprof_frames")
        self.keep = options.resolve(config, "memprof_keep")
        if not options.resolve(config, "memprof_bin_dir") and not html_dir and options.given(config, "memprof_keep"):
            raise pytest.UsageError("--memprof-keep needs --memprof-bin-dir DIR (or --memprof-html DIR): "
                                    "without one no capture is written")
        self.native = bool(options.resolve(config, "memprof_native"))
        self.python_allocators = not options.resolve(config, "memprof_no_python_allocators")
        self.leak_floor = options.resolve(config, "memprof_leak_floor")
        self.baseline = _baseline_judge(config)
        # Each test's largest locations, for a baseline to keep or to compare with the one kept; the
        # cache's baseline (--memprof-fail-on-increase with no file) keeps them too, so the next run can
        # say where a test grew.
        uses_cache = options.resolve(config, "memprof_fail_on_increase") is not None \
            and not options.resolve(config, "memprof_compare")
        self.save_locations = options.resolve(config, "memprof_baseline_locations") \
            if options.resolve(config, "memprof_save_baseline") or uses_cache else 0
        self.compare_locations = self.baseline is not None and self.baseline.fail_on_increase is not None
        bin_dir = options.resolve(config, "memprof_bin_dir")
        # --memprof-html keeps the per-test captures in its folder unless told otherwise.
        asked = f"--memprof-bin-dir {bin_dir}" if bin_dir else f"--memprof-html {html_dir}"
        bin_dir = bin_dir or (str(Path(html_dir) / "captures") if html_dir else None)
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.bin_dir_error: str | None = None  # why the folder could not be made: each capture then says so
        if self.bin_dir is not None:
            try:
                self.bin_dir.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as error:  # a file in the way: a mistake in the command
                raise pytest.UsageError(f"{asked}: cannot create it: {error.strerror}") from None
            except OSError as error:  # a full or read-only disk: the tests still run, their files are lost
                self.bin_dir_error = error.strerror or str(error)
        # Outputs that need the window's header (per-test files, HTML pages) make it per test.
        self.needs_header = self.bin_dir is not None or bool(html_dir)
        self.rootdir = Path(str(config.rootpath))
        self.tracker: Tracker | None = None
        self.reader = CaptureReader()
        self.window: _Window | None = None
        self.capture: Capture | None = None  # the last closed window's, until its result is handed out
        self.outcomes: dict[str, str] = {}
        self.results: list[TestMemoryResult] = []
        self.overhead_s = 0.0
        self.resident_set = _ResidentSet()

    # ---- collection -----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Parse every test's memory markers now, so a bad one stops the run before it starts."""
        stems = capture_file_stems(item.nodeid for item in items)
        for item in items:
            item.stash[FILE_STEM_KEY] = stems[item.nodeid]
            spec = spec_for(item, self.default_limit)
            if spec.has_marker or self.track_all:
                item.stash[SPEC_KEY] = spec

    # ---- the window around each test ------------------------------------------------------------

    def _ensure_tracker(self) -> Tracker:
        if self.tracker is None:
            tracker = Tracker(None, native=self.native, trace_python_allocators=self.python_allocators,
                              command_line="pytest")
            try:
                tracker.start()
            except TrackerError as error:
                raise pytest.UsageError(f"pytest-memprof cannot track: {error}") from None
            tracker.pause()
            self.reader.feed(tracker.drain())  # frames and thread names seen while starting
            # A test's records are replayed on the tracker's thread as they fill a buffer, on a
            # second core while the test runs: at its end only the last buffer is left to replay
            # (a test writing 21 MB of records waited 220 ms for the whole replay).
            tracker.follow(self.reader)
            self.tracker = tracker
        return self.tracker

    def _open(self, item: pytest.Item) -> None:
        began = time.perf_counter()
        spec = item.stash[SPEC_KEY]
        tracker = self._ensure_tracker()
        files = self.bin_dir is not None
        self.window = window = _Window(spec, len(self.reader.frames()) if files else 0,
                                       len(self.reader.nodes()) if files else 0)
        self.reader.reset_window(threading.get_native_id() if spec.current_thread_only else 0)
        gc.callbacks.append(self._on_gc)
        self.overhead_s += time.perf_counter() - began
        window.started = time.perf_counter()
        window.started_at = time.time()
        tracker.resume()

    def _on_gc(self, phase: str, info: dict) -> None:
        window = self.window
        if window is None:
            return
        if phase == "start":
            window.gc_collections += 1
            self.tracker.mark(window.gc_collections, "gc-start")
        else:
            window.gc_collected += info.get("collected", 0)
            self.tracker.mark(window.gc_collections, "gc-stop")

    def _discard(self) -> None:
        """Close the open window without a result; its frames and stacks stay known to the reader."""
        began = time.perf_counter()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self.tracker.pause()
        self.window = None
        self._feed_rest()
        self.reader.close_window()
        self.overhead_s += time.perf_counter() - began

    def _feed_rest(self) -> bytes:
        """The window's records, the reader given those the tracker's thread had not replayed.

        Only a capture file needs the records the thread replayed: without one they are not
        copied out at all (a big test's are tens of MB)."""
        data, followed = self.tracker.drain_followed(whole=self.bin_dir is not None)
        self.reader.feed(memoryview(data)[followed:])
        if self.reader.follow_failed:
            raise MemoryError("pytest-memprof ran out of memory replaying a test's allocations")
        return data

    def _close(self, item: pytest.Item) -> TestMemoryResult | None:
        window = self.window
        if window is None:
            return None
        duration = time.perf_counter() - window.started
        began = time.perf_counter()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        # Frees by the collector belong to the test; a full collection costs milliseconds on a
        # big heap, so it runs only where leaks are judged, a young one elsewhere.
        gc.collect() if window.spec.checks_leaks else gc.collect(1)
        self.tracker.pause()
        rss_at_end = self.resident_set.bytes()  # after pause: reading it is not the test's allocation
        self.window = None
        data = self._feed_rest()
        self.reader.close_window()
        header = window_header(item.nodeid, duration, native=bool(self.reader.native_nodes()),
                               trace_python_allocators=self.python_allocators,
                               start_ms=self.reader.start_ms) if self.needs_header else None
        self.capture = Capture.from_reader(self.reader, metadata_from_header(header) if header else _WINDOW_METADATA)
        result = self._result(item, window, self.capture, duration)
        # The process's RSS while the test ran: the tracker's 10 ms samples, and the end for a shorter test.
        result.rss_bytes = max([rss_at_end, *(rss for _, _, rss in self.reader.timeline())])
        if self.bin_dir is not None:
            path = self.bin_dir / (file_stem(item) + ".bin")
            try:
                if self.bin_dir_error:
                    raise OSError(0, self.bin_dir_error)
                write_window_capture(path, self.reader, data, window.frames_before, window.nodes_before, header)
            except OSError as error:
                # A full or read-only disk loses the file, never the test's outcome: said once at the end.
                result.capture_error = error.strerror or str(error)
            else:
                result.capture_path = str(path)
        self.overhead_s += time.perf_counter() - began
        return result

    def _result(self, item: pytest.Item, window: _Window, capture: Capture, duration: float) -> TestMemoryResult:
        freed = 0
        open_heap: dict[int, int] = {}
        for mark_id, label, heap in self.reader.marks():
            if label == "gc-start":
                open_heap[mark_id] = heap
            elif label == "gc-stop" and mark_id in open_heap:
                freed += max(0, open_heap.pop(mark_id) - heap)
        spec = window.spec
        # Stacks cost a Python object per frame: built only where a verdict or a report needs them.
        leak_stacks = capture.leak_stacks() if spec.checks_leaks else []
        # The objects go as soon as they are judged: keeping them would keep all they refer to alive.
        surviving = item.stash.get(OBJECTS_KEY, None)
        item.stash[OBJECTS_KEY] = None
        verdict = judge(spec, capture.peak_bytes, leak_stacks, garbage_count() - window.garbage_before,
                        self.leak_floor, surviving)
        del surviving
        in_baseline = baseline_peak = summary = None
        if self.save_locations or self.compare_locations:
            from ..ci.baseline import location_summary

            summary = location_summary(capture, self.save_locations or 5, self.rootdir)
        if self.baseline is not None:
            in_baseline, baseline_peak, grew = self.baseline.judge(item.nodeid, capture.peak_bytes, summary)
            if grew is not None:
                verdict.failures.append(grew)
        keep = max(self.max_stacks, 10)
        return TestMemoryResult(
            nodeid=item.nodeid,
            peak_bytes=capture.peak_bytes,
            leaked_bytes=capture.leaked_bytes,
            allocations=capture.total_allocations,
            total_bytes=capture.total_bytes,
            duration_s=duration,
            gc_collections=window.gc_collections,
            gc_freed_bytes=freed,
            gc_collected_objects=window.gc_collected,
            limit_bytes=spec.limit_bytes,
            leak_limit_bytes=spec.leak_limit_bytes,
            memory_failed=bool(verdict.failures),
            failures=verdict.failures,
            peak_stacks=capture.peak_stacks()[:keep] if verdict.failures else [],
            leak_stacks=verdict.leak_stacks[:keep],
            csv_name="::".join(item.listnames()[1:]),
            started_at=window.started_at,
            worker=os.environ.get("PYTEST_XDIST_WORKER", ""),
            baseline_peak_bytes=baseline_peak,
            in_baseline=in_baseline,
            location_summary=summary if self.save_locations else None,
        )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        """With --memprof-fixtures, the window opens before setup."""
        if self.fixtures and SPEC_KEY in item.stash:
            self._open(item)
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        """Without --memprof-fixtures, the window is the call phase."""
        spec = item.stash.get(SPEC_KEY, None)
        if spec is None:
            yield
            return
        if spec.warmup and self.window is not None:
            # --memprof-fixtures opened the window at setup. A pause and resume inside a window
            # restarts the record stream's deltas where the reader cannot see it (every later
            # window read as nearly empty): the window restarts after the warm-ups instead, so it
            # covers the last run and the teardown.
            self._discard()
        for _ in range(spec.warmup):
            # Untracked runs first, so caches filled on first use are not counted as leaks.
            item.runtest()
        if not self.fixtures or self.window is None:
            self._open(item)
        try:
            yield
        finally:
            if not self.fixtures:
                result = self._close(item)
                if result is not None:
                    item.stash[RESULT_KEY] = result

    @pytest.hookimpl(hookwrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function):
        """limit_leaked_objects: objects are watched around the test function alone, as pytest-memray does."""
        spec = pyfuncitem.stash.get(SPEC_KEY, None)
        if spec is None or not spec.leaked_objects:
            yield
            return
        function = pyfuncitem.obj

        @functools.wraps(function)
        def watched(*args, **kwargs):
            from .. import _tracker

            _tracker.watch_objects()
            try:
                return function(*args, **kwargs)
            finally:
                # Cycles collected and the interpreter's caches emptied: only what the test kept is left.
                gc.collect()
                sys._clear_internal_caches()
                pyfuncitem.stash[OBJECTS_KEY] = _tracker.surviving_objects()

        pyfuncitem.obj = watched
        try:
            yield
        finally:
            pyfuncitem.obj = function

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):
        """With --memprof-fixtures, the window closes after teardown."""
        yield
        if self.fixtures and self.window is not None:
            if self.window.spec.checks_leaks and getattr(item, "funcargs", None):
                # pytest drops the fixtures' values only after the teardown hooks: without this,
                # every fixture value would count as a leak of the test.
                item.funcargs.clear()
            result = self._close(item)
            if result is not None:
                item.stash[RESULT_KEY] = result

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Turn a broken limit into a failure with the guilty stacks; hand the result out; attach the figures."""
        outcome = yield
        report = outcome.get_result()
        judged_phase = "teardown" if self.fixtures else "call"
        if call.when != judged_phase or RESULT_KEY not in item.stash:
            return
        result = item.stash[RESULT_KEY]
        if result.memory_failed and (report.passed or (self.fixtures and report.outcome != "skipped")):
            message = failure_message(  # what the terminal shows and JUnit puts in <failure>
                result.failures, result.peak_stacks, result.leak_stacks, show_leaks=item.stash[SPEC_KEY].checks_leaks,
                max_stacks=self.max_stacks, max_frames=self.max_frames, rootdir=self.rootdir)
            if report.failed:
                # With --memprof-fixtures, a teardown that raised is an ERROR of its own: its traceback
                # stays, the memory message goes inside it.
                if hasattr(report.longrepr, "addsection"):
                    report.longrepr.addsection("memprof: memory limit", message)
                else:
                    report.longrepr = f"{report.longrepr}\n\n{message}"
            else:
                report.outcome = "failed"
                report.longrepr = message
                report.memprof_memory = True  # our verdict alone failed it: MEMORY (kept through xdist)
        elif result.memory_failed:
            result.memory_failed = False  # the test failed for its own reasons first
        capture, self.capture = self.capture, None
        item.ihook.pytest_memprof_test_result(item=item, result=result, capture=capture)
        if self.bin_dir is not None and result.capture_path and self.keep == "failed" and not report.failed:
            Path(result.capture_path).unlink(missing_ok=True)
            result.capture_path = None
        properties = result.properties()
        item.user_properties.extend(properties)
        if report.user_properties is not item.user_properties:
            report.user_properties.extend(properties)

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        """An ``M`` in the progress line for a test that failed on memory."""
        # Only the report our verdict alone failed: a test's own error keeps pytest's word for it.
        if report.failed and getattr(report, "memprof_memory", False):
            # With --memprof-fixtures the verdict comes after teardown: an error there, as pytest
            # reports any teardown failure.
            category = "error" if report.when == "teardown" else "failed"
            return category, "M", ("MEMORY", {"red": True})
        return None

    # ---- the end of the session -----------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect results from reports: ours, or an xdist worker's, the same way."""
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.nodeid] = report.outcome
        judged_phase = "teardown" if self.fixtures else "call"
        if report.when != judged_phase:
            return
        result = TestMemoryResult.from_properties(report.nodeid, report.user_properties,
                                                  csv_name=_csv_name(report.nodeid), duration_s=report.duration)
        if result is not None:
            result.outcome = self.outcomes.get(report.nodeid, "passed")
            if result.memory_failed and report.failed:
                path, line, _ = report.location
                result.failure_text = str(report.longrepr)
                result.location = (path, (line or 0) + 1)
            self.results.append(result)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """On the xdist controller: add a finished worker's own cost to the session's."""
        self.overhead_s += float(getattr(node, "workeroutput", {}).get(OVERHEAD_KEY, 0.0))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Hand the session's results to the outputs, where they meet."""
        # An xdist worker's results also reach the controller, which writes every file once, merged:
        # a worker writing them too would race it and append its own step summary to GitHub's.
        if hasattr(session.config, "workerinput"):
            session.config.workeroutput[OVERHEAD_KEY] = self.overhead_s  # read in pytest_testnodedown
            return
        session.config.hook.pytest_memprof_session_finish(session=session, results=self.results,
                                                          overhead_s=self.overhead_s)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the session tracker."""
        self.resident_set.close()
        if self.tracker is not None:
            try:
                self.tracker.stop()
            except TrackerError:
                pass
            self.tracker = None


def _baseline_judge(config: pytest.Config) -> BaselineJudge | None:
    compare = options.resolve(config, "memprof_compare")
    fail_on_increase = options.resolve(config, "memprof_fail_on_increase")
    if not compare and fail_on_increase is None:
        return None
    from ..ci import baseline

    if not compare and getattr(config, "cache", None) is None:  # -p no:cacheprovider
        raise pytest.UsageError("--memprof-fail-on-increase needs a baseline: add --memprof-compare FILE, or let it "
                                "compare with the previous run in pytest's cache (without -p no:cacheprovider)")
    try:
        # Without a file: the previous run's figures, which pytest's cache keeps (outputs.CachedBaseline).
        entries = baseline.load(compare) if compare else baseline.load_cached(config.cache)
    except UsageError as error:
        raise pytest.UsageError(str(error)) from None
    return BaselineJudge(entries, fail_on_increase, options.resolve(config, "memprof_min_bytes"),
                         "the baseline" if compare else "the previous run")


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _ResidentSet:
    """This process's resident set size, read through a descriptor of /proc/self/statm kept open."""

    # An open per test cost 28 us in numpy's suite (1,600 tests); a read of an open one, under 1 us.
    def __init__(self) -> None:
        self._fd = -1
        self._pid = 0

    def bytes(self) -> int:
        """The resident set size now (0 where /proc cannot tell)."""
        try:
            if self._pid != os.getpid():  # opened by the process forked from: it would read that one's
                self.close()
                self._fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
                self._pid = os.getpid()
            return int(os.pread(self._fd, 256, 0).split()[1]) * _PAGE_SIZE
        except (OSError, ValueError, IndexError):
            return 0

    def close(self) -> None:
        """Close the descriptor (a later read opens it again)."""
        # Only in the process that opened it: a forked child may have closed that number and
        # opened something else under it.
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd, self._pid = -1, 0


def _csv_name(nodeid: str) -> str:
    # The older plugin named tests by item.listnames()[1:]: the file's base name, then the rest.
    path, _, rest = nodeid.partition("::")
    return "::".join([path.rsplit("/", 1)[-1], *([rest] if rest else [])])
