"""The plugin object: one tracker for the session, one window per tracked test."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import threading
import time
from pathlib import Path

import pytest

from .. import launcher
from .._reader import CaptureReader
from ..capture import Capture, metadata_from_header
from ..ci import baseline, github
from ..errors import TrackerError, UsageError
from ..sizes import format_size
from ..tracker import Tracker
from . import options
from .markers import MemorySpec, garbage_count, judge, spec_for
from .report import failure_message, summary_lines, write_csv
from .results import TestMemoryResult
from .window_capture import write_window_capture

RESULT_KEY = pytest.StashKey[TestMemoryResult]()
SPEC_KEY = pytest.StashKey[MemorySpec]()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def capture_file_name(nodeid: str) -> str:
    """A file-safe name for a test's capture: readable, and short enough for any file system."""
    safe = _UNSAFE.sub("_", nodeid).strip("_") or "test"
    if len(safe) > _MAX_NAME:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:12]
        safe = f"{safe[:_MAX_NAME - 13]}-{digest}"
    return f"{safe}.bin"


class _Window:
    """The state of one test's tracking window."""

    def __init__(self, spec: MemorySpec) -> None:
        self.spec = spec
        self.started = time.perf_counter()
        self.garbage_before = garbage_count()
        self.gc_collections = 0
        self.gc_collected = 0
        self.frames_before = 0
        self.nodes_before = 0


class MemprofPlugin:
    """Session state of pytest-memprof; registered as a plugin at configure time."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.track_all = bool(options.resolve(config, "memprof"))
        self.default_limit = options.resolve(config, "memprof_limit")
        if self.default_limit is not None:
            self.track_all = True
        self.fixtures = bool(options.resolve(config, "memprof_fixtures"))
        self.max_stacks = options.resolve(config, "memprof_stacks")
        self.max_frames = options.resolve(config, "memprof_frames")
        top_n = options.resolve(config, "memprof_top_n")
        summary = options.resolve(config, "memprof_summary")
        self.summary_top: int | None = summary if top_n is None else (None if top_n == 0 else top_n)
        self.show_summary = summary > 0 if top_n is None else True
        self.csv_file = options.resolve(config, "memprof_csv_file")
        bin_dir = options.resolve(config, "memprof_bin_dir")
        html_dir = options.resolve(config, "memprof_html")
        self.html_dir = Path(html_dir) if html_dir else None
        self._assets_written = False  # html_dir/assets, shared by the per-test flame graphs
        self._window_metadata = metadata_from_header({"runner_files": list(launcher.PYTEST)})
        if self.html_dir is not None:
            self.track_all = True
            try:
                (self.html_dir / "flamegraphs").mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise pytest.UsageError(f"--memprof-html {html_dir}: cannot create it: {error.strerror}") from None
            bin_dir = bin_dir or str(self.html_dir / "captures")
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.rss_samples: list[tuple[float, int]] = []
        self._psutil_process = None
        self.outcomes: dict[str, str] = {}
        self.session_started = time.perf_counter()
        self.keep = options.resolve(config, "memprof_keep")
        self.native = bool(options.resolve(config, "memprof_native"))
        self.python_allocators = not options.resolve(config, "memprof_no_python_allocators")
        self.leak_floor = options.resolve(config, "memprof_leak_floor")
        self.save_baseline = options.resolve(config, "memprof_save_baseline")
        compare = options.resolve(config, "memprof_compare")
        self.fail_on_increase = options.resolve(config, "memprof_fail_on_increase")
        self.min_bytes = options.resolve(config, "memprof_min_bytes")
        self.baseline: dict[str, baseline.BaselineEntry] | None = None
        if compare:
            try:
                self.baseline = baseline.load(compare)
            except UsageError as error:
                raise pytest.UsageError(str(error)) from None
        elif self.fail_on_increase is not None:
            raise pytest.UsageError("--memprof-fail-on-increase needs a baseline: add --memprof-compare FILE")
        self.github = options.resolve(config, "memprof_github")
        self.output_errors: list[str] = []
        self.output_notes: list[str] = []
        self.junit_file = options.resolve(config, "memprof_junit")
        self.memory_failures: list[github.MemoryFailure] = []
        if self.bin_dir is not None:
            try:
                self.bin_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise pytest.UsageError(f"--memprof-bin-dir {bin_dir}: cannot create it: {error.strerror}") from None
        self.tracker: Tracker | None = None
        self.reader = CaptureReader()
        self.window: _Window | None = None
        self.results: list[TestMemoryResult] = []
        self.overhead_s = 0.0
        self.rootdir = Path(str(config.rootpath))

    # ---- collection -----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Parse every test's memory markers now, so a bad one stops the run before it starts."""
        for item in items:
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
            self.tracker = tracker
        return self.tracker

    def _open(self, item: pytest.Item) -> None:
        began = time.perf_counter()
        spec = item.stash[SPEC_KEY]
        tracker = self._ensure_tracker()
        window = _Window(spec)
        window.frames_before = len(self.reader.frames()) if self.bin_dir else 0
        window.nodes_before = len(self.reader.nodes()) if self.bin_dir else 0
        self.window = window
        self.reader.reset_window(threading.get_native_id() if spec.current_thread_only else 0)
        gc.callbacks.append(self._on_gc)
        self.overhead_s += time.perf_counter() - began
        window.started = time.perf_counter()
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
        self.window = None
        data = self.tracker.drain()
        self.reader.feed(data)
        # Named as in the per-test capture files, so the stacks start at the test here too: what
        # launched pytest (xdist's execnet bootstrap, `python -c`) and pytest itself are left out.
        capture = Capture.from_reader(self.reader, self._window_metadata)
        result = self._result(item, window, capture, duration)
        if self.html_dir is not None:
            self.rss_samples.append((time.perf_counter() - self.session_started, self._process().memory_info().rss))
        if self.bin_dir is not None:
            path = self.bin_dir / capture_file_name(item.nodeid)
            write_window_capture(path, self.reader, data, window.frames_before, window.nodes_before,
                                 item.nodeid, duration, trace_python_allocators=self.python_allocators)
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
        verdict = judge(spec, capture.peak_bytes, leak_stacks, garbage_count() - window.garbage_before,
                        self.leak_floor)
        in_baseline, baseline_peak = self._against_baseline(item.nodeid, capture.peak_bytes, verdict.failures)
        keep = max(self.max_stacks, 10)
        peak_stacks = capture.peak_stacks()[:keep] if verdict.failures else []
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
            peak_stacks=peak_stacks,
            leak_stacks=verdict.leak_stacks[:keep],
            csv_name="::".join(item.listnames()[1:]),
            baseline_peak_bytes=baseline_peak,
            in_baseline=in_baseline,
        )

    def _against_baseline(self, nodeid: str, peak: int, failures: list[str]):
        """(in baseline?, baseline peak); appends a failure if the peak grew past the allowed increase."""
        if self.baseline is None:
            return None, None
        entry = self.baseline.get(nodeid)
        if entry is None:
            return False, None  # noted in the summary, never failed
        grew = peak - entry.peak_bytes
        allowed = entry.peak_bytes * self.fail_on_increase / 100 if self.fail_on_increase is not None else None
        if allowed is not None and grew > allowed and grew > self.min_bytes:
            failures.append(
                f"Peak grew {baseline.change_text(peak, entry.peak_bytes)} over the baseline "
                f"({format_size(entry.peak_bytes)} -> {format_size(peak)}), more than the "
                f"{self.fail_on_increase:g}% allowed by --memprof-fail-on-increase."
            )
        return True, entry.peak_bytes

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
        for _ in range(spec.warmup):
            # Untracked runs first, so caches filled on first use are not counted as leaks.
            if self.window is not None:
                self.tracker.pause()
            item.runtest()
            if self.window is not None:
                self.tracker.resume()
        if not self.fixtures:
            self._open(item)
        try:
            yield
        finally:
            if not self.fixtures:
                result = self._close(item)
                if result is not None:
                    item.stash[RESULT_KEY] = result

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):
        """With --memprof-fixtures, the window closes after teardown."""
        yield
        if self.fixtures and self.window is not None:
            result = self._close(item)
            if result is not None:
                item.stash[RESULT_KEY] = result

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Turn a broken limit into a failure with the guilty stacks; attach the figures."""
        outcome = yield
        report = outcome.get_result()
        judged_phase = "teardown" if self.fixtures else "call"
        if call.when != judged_phase or RESULT_KEY not in item.stash:
            return
        result = item.stash[RESULT_KEY]
        if result.memory_failed and (report.passed or (self.fixtures and report.outcome != "skipped")):
            spec = item.stash[SPEC_KEY]
            text = failure_message(
                result.failures, result.peak_stacks, result.leak_stacks,
                show_peak=(spec.limit_bytes is not None and result.peak_bytes > spec.limit_bytes)
            or any("over the baseline" in failure for failure in result.failures),
                show_leaks=spec.checks_leaks,
                max_stacks=self.max_stacks, max_frames=self.max_frames, rootdir=self.rootdir,
            )
            report.outcome = "failed"
            report.longrepr = text  # what the terminal shows and JUnit puts in <failure>
        elif result.memory_failed:
            result.memory_failed = False  # the test failed for its own reasons first
        if self.html_dir is not None and result.capture_path:
            result.flamegraph_path = self._render_flamegraph(item, Path(result.capture_path))
        if self.bin_dir is not None and result.capture_path and self.keep == "failed" and not report.failed:
            Path(result.capture_path).unlink(missing_ok=True)
            result.capture_path = None
        properties = result.properties()
        item.user_properties.extend(properties)
        if report.user_properties is not item.user_properties:
            report.user_properties.extend(properties)
        item.ihook.pytest_memprof_test_result(item=item, result=result)

    def _render_flamegraph(self, item: pytest.Item, capture_path: Path) -> str | None:
        try:
            from ..reports.flamegraph import render_flamegraph
        except ImportError:  # the flame graph renderer is not part of this build yet
            return None
        # One copy of our script and stylesheet for the whole report (they were three quarters of
        # each test's page); links stay relative, so the folder still works zipped and unpacked.
        if not self._assets_written:
            from ..reports.flamegraph import SCRIPTS
            from ..reports.page import write_assets

            write_assets(self.html_dir / "assets", SCRIPTS)
            self._assets_written = True
        target = self.html_dir / "flamegraphs" / (capture_file_name(item.nodeid)[:-4] + ".html")
        render_flamegraph(Capture.open(capture_path), target, title=item.nodeid, assets="../assets")
        return str(target)

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        """An ``M`` in the progress line for a test that failed on memory."""
        # Collection reports have no user_properties.
        properties = getattr(report, "user_properties", ())
        if report.failed and any(name == "memprof_memory_failed" for name, _ in properties):
            # With --memprof-fixtures the verdict comes after teardown: an error there, as pytest
            # reports any teardown failure.
            category = "error" if report.when == "teardown" else "failed"
            return category, "M", ("MEMORY", {"red": True})
        return None

    # ---- the end of the session -----------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect figures from reports: ours, or an xdist worker's, the same way."""
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.nodeid] = report.outcome
        judged_phase = "teardown" if self.fixtures else "call"
        if report.when != judged_phase:
            return
        result = TestMemoryResult.from_properties(report.nodeid, report.user_properties,
                                                  csv_name=_csv_name(report.nodeid), duration_s=report.duration)
        if result is not None:
            self.results.append(result)
            if result.memory_failed and report.failed:
                path, line, _ = report.location
                self.memory_failures.append(github.MemoryFailure(
                    report.nodeid, github.repository_path(path, self.rootdir), (line or 0) + 1, str(report.longrepr)))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the requested files; one that cannot be written makes the run fail."""
        # An xdist worker's results also reach the controller, which writes every file once, merged:
        # a worker writing them too would race it and append its own step summary to GitHub's.
        if not self.results or hasattr(session.config, "workerinput"):
            return
        # (path, write, what to say when it worked)
        writers = []
        if self.junit_file:
            writers.append((self.junit_file, self._write_junit, None))
        if self.save_baseline:
            writers.append((self.save_baseline, lambda: baseline.save(self.save_baseline, self.results),
                            f"memprof: baseline of {len(self.results)} test(s) saved to {self.save_baseline}"))
        if self.csv_file:
            writers.append((self.csv_file, lambda: write_csv(self.csv_file, self.results, self.summary_top or None),
                            None))
        if self.html_dir is not None:
            writers.append((self.html_dir / "index.html", self._write_html,
                            f"memprof: HTML report in {self.html_dir / 'index.html'}"))
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if github.active(self.github) and summary_file:
            writers.append((summary_file, self._append_step_summary, None))
        for path, write, note in writers:
            try:
                write()
            except OSError as error:
                self.output_errors.append(f"memprof: cannot write {path}: {error.strerror or error}")
            else:
                if note:
                    self.output_notes.append(note)
        if self.output_errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """The hungriest tests, totals and our overhead; GitHub annotations; output problems."""
        if not self.results:
            return
        if self.show_summary:
            top = self.summary_top
            title = "memprof: tests by peak memory" + (f" (top {top})" if top else "")
            terminalreporter.write_sep("=", title)
            for line in summary_lines(self.results, top, self.overhead_s, compared=self.baseline is not None):
                terminalreporter.write_line(line)
        if github.active(self.github):
            for line in github.annotations(self.memory_failures):
                terminalreporter.write_line(line)
        for note in self.output_notes:
            terminalreporter.write_line(note)
        for error in self.output_errors:
            terminalreporter.write_line(error, red=True, bold=True)

    def _process(self):
        # psutil, Jinja2, junit-xml and the sampler load only when an option needs them: every
        # pytest run in an environment with the plugin installed imports this module.
        if self._psutil_process is None:
            import psutil

            self._psutil_process = psutil.Process()
        return self._psutil_process

    def _write_html(self) -> None:
        from ..ci import html_report
        from . import sysmon

        html_report.write_index(self.html_dir, self.results, self.outcomes, self.rss_samples,
                                compared=self.baseline is not None, title=self.rootdir.name,
                                sys_samples=sysmon.sys_series(self.config))

    def _write_junit(self) -> None:
        totals = {
            "memprof_tests": len(self.results),
            "memprof_memory_failures": sum(result.memory_failed for result in self.results),
            "memprof_peak_bytes_max": max(result.peak_bytes for result in self.results),
            "memprof_allocations": sum(result.allocations for result in self.results),
            "memprof_total_bytes": sum(result.total_bytes for result in self.results),
            "memprof_leaked_bytes": sum(result.leaked_bytes for result in self.results),
        }
        texts = {failure.nodeid: failure.message for failure in self.memory_failures}
        from ..ci import junit

        junit.write(self.junit_file, self.results, texts, totals)

    def _append_step_summary(self) -> None:
        text = github.step_summary(self.results, self.memory_failures, self.summary_top or 10,
                                   compared=self.baseline is not None)
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(text)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the session tracker."""
        if self.tracker is not None:
            try:
                self.tracker.stop()
            except TrackerError:
                pass
            self.tracker = None


def _csv_name(nodeid: str) -> str:
    # The older plugin named tests by item.listnames()[1:]: the file's base name, then the rest.
    path, _, rest = nodeid.partition("::")
    return "::".join([path.rsplit("/", 1)[-1], *([rest] if rest else [])])
