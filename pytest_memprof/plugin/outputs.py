"""The session's outputs, one small plugin each, registered at configure time when its option is on.

Each is fed like any third-party plugin, through our hooks (hookspecs.py): ``pytest_memprof_test_result``
in the process that ran the test, ``pytest_memprof_session_finish`` where the results meet. A file
that cannot be written is said at the end and fails the run (OutputLog).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ..capture import Capture
from ..ci import github
from ..model import View
from . import options
from .report import summary_lines, write_csv
from .results import TestMemoryResult
from .verdict import FailureKind
from .window_capture import file_stem

LOG_NAME = "memprof-output-log"


def reason(error: BaseException) -> str:
    """Why a file could not be written, in the system's words ("No space left on device")."""
    # ReportError is raised "from None" over the OSError it explains: the OSError says why.
    cause = error if isinstance(error, OSError) else error.__context__
    if isinstance(cause, OSError):
        return cause.strerror or str(cause)
    return str(error)


class OutputLog:
    """What the file outputs did: a line each at the end of the terminal summary; a failure fails the run.

    An output of many files (a capture per test, a page per test) gets one line however many of
    its files failed, with how many and why; a test's outcome never depends on any of them.
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.notes: list[str] = []
        self.errors: list[str] = []

    def attempt(self, path: object, write, note: str | None = None) -> bool:
        """Run ``write()``; an OSError is kept as an error about ``path``, success as ``note``."""
        try:
            write()
        except OSError as error:
            self.errors.append(f"memprof: cannot write {path}: {reason(error)}")
            return False
        if note:
            self.notes.append(note)
        return True

    def many(self, path: object, what: str, tried: int, reasons: Sequence[str]) -> None:
        """One line for an output of ``tried`` files of which ``len(reasons)`` could not be written."""
        if reasons:
            why = "; ".join(dict.fromkeys(reasons))
            self.errors.append(f"memprof: cannot write {path}: {len(reasons)} of {tried} {what} not written: {why}")

    @pytest.hookimpl(trylast=True)
    def pytest_memprof_session_finish(self, session: pytest.Session, results: Sequence[TestMemoryResult]) -> None:
        """After every output wrote its file: one that could not makes the run fail."""
        if self.bin_dir is not None:
            # Results carry their capture's error through report properties, so xdist workers' count too.
            lost = [result.capture_error for result in results if result.capture_error]
            tried = sum(1 for result in results if result.capture_error or result.capture_path)
            self.many(self.bin_dir, "captures", tried, lost)
        if self.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Where each file went, then what could not be written."""
        for note in self.notes:
            terminalreporter.write_line(note)
        for error in self.errors:
            terminalreporter.write_line(error, red=True, bold=True)


class Summary:
    """The end-of-session table of the hungriest tests, with totals and our own cost."""

    def __init__(self, top: int | None, compared: bool) -> None:
        self.top = top
        self.compared = compared
        self.lines: list[str] = []

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult], overhead_s: float) -> None:
        """Make the table."""
        if results:
            self.lines = summary_lines(results, self.top, overhead_s, compared=self.compared)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Show it (before the annotations and the files' lines: see register())."""
        if self.lines:
            title = "memprof: tests by peak memory" + (f" (top {self.top})" if self.top else "")
            terminalreporter.write_sep("=", title)
            for line in self.lines:
                terminalreporter.write_line(line)


class CsvFile:
    """``--memprof-csv-file``: the older pytest-memprof's ``function,memory`` table."""

    def __init__(self, path: str, top: int | None, log: OutputLog) -> None:
        self.path, self.top, self.log = path, top, log

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult]) -> None:
        """Write it (the header alone when no test was tracked: the file still says the run happened)."""
        self.log.attempt(self.path, lambda: write_csv(self.path, results, self.top))


class JUnitFile:
    """``--memprof-junit``: a memory-only JUnit report."""

    def __init__(self, path: str, log: OutputLog) -> None:
        self.path, self.log = path, log

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult]) -> None:
        """Write it, with the session's totals as suite properties (an empty suite when nothing was tracked)."""
        from ..ci import junit

        totals = {
            "memprof_tests": len(results),
            "memprof_memory_failures": sum(result.memory_failed for result in results),
            "memprof_peak_bytes_max": max((result.peak_bytes for result in results), default=0),
            "memprof_allocations": sum(result.allocations for result in results),
            "memprof_total_bytes": sum(result.total_bytes for result in results),
            "memprof_leaked_bytes": sum(result.leaked_bytes for result in results),
        }
        texts = {result.nodeid: result.failure_text for result in results if result.failure_text}
        self.log.attempt(self.path, lambda: junit.write(self.path, results, texts, totals))


class BaselineFile:
    """``--memprof-save-baseline``: each test's figures, for a later run to compare with."""

    def __init__(self, path: str, log: OutputLog) -> None:
        self.path, self.log = path, log

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult]) -> None:
        """Write it."""
        if not results:
            return
        from ..ci import baseline

        self.log.attempt(self.path, lambda: baseline.save(self.path, results),
                         f"memprof: baseline of {len(results)} test(s) saved to {self.path}")


class CachedBaseline:
    """Each tracked test's figures in pytest's cache, for ``--memprof-fail-on-increase`` in the next run."""

    def __init__(self, cache: pytest.Cache) -> None:
        self.cache = cache

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult]) -> None:
        """Store them (ci/baseline.py says which tests keep their earlier figures)."""
        if results:
            from ..ci import baseline

            baseline.save_cached(self.cache, results)


class GitHub:
    """GitHub Actions: an error annotation per memory failure, and a table in the job's step summary."""

    def __init__(self, rootdir: Path, top: int, compared: bool, log: OutputLog) -> None:
        self.rootdir, self.top, self.compared, self.log = rootdir, top, compared, log
        self.failures: list[github.MemoryFailure] = []

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult]) -> None:
        """Collect the failures; append the step summary when GitHub gives a file for it."""
        self.failures = [
            github.MemoryFailure(result.nodeid, github.repository_path(result.location[0], self.rootdir),
                                 result.location[1], result.failure_text)
            for result in results if result.failure_text and result.location]
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if results and summary_file:
            self.log.attempt(summary_file, lambda: self._append(summary_file, results))

    def _append(self, path: str, results: Sequence[TestMemoryResult]) -> None:
        text = github.step_summary(results, self.failures, self.top, compared=self.compared)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """The annotations, as workflow commands in the log."""
        for line in github.annotations(self.failures):
            terminalreporter.write_line(line)


class HtmlReport:
    """``--memprof-html``: a flame graph per test, rendered from its in-memory capture, and the index page."""

    def __init__(self, folder: Path, title: str, compared: bool, config: pytest.Config, log: OutputLog) -> None:
        self.folder, self.title, self.compared, self.config, self.log = folder, title, compared, config, log
        try:
            (folder / "flamegraphs").mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as error:  # a file in the way: a mistake in the command
            raise pytest.UsageError(f"--memprof-html {folder}: cannot create it: {error.strerror}") from None
        except OSError:
            pass  # a full or read-only disk: each page says so, once, at the end; the tests still run
        # The session's clock starts here (and again at session start), as --memprof-sys's does.
        self._started_at = time.time()
        self._assets_written = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start the session's clock."""
        self._started_at = time.time()

    def pytest_memprof_test_result(self, item: pytest.Item, result: TestMemoryResult, capture: Capture) -> None:
        """The test's flame graph."""
        from ..reports.flamegraph import SCRIPTS, render_flamegraph
        from ..reports.output import ReportError
        from ..reports.page import write_assets

        target = self.folder / "flamegraphs" / (file_stem(item) + ".html")
        view = page_view(result)
        try:
            if not self._assets_written:
                # One copy of our script and stylesheet for every page; links stay relative, so the
                # folder still works zipped and unpacked.
                write_assets(self.folder / "assets", SCRIPTS)
                self._assets_written = True
            render_flamegraph(capture, target, title=item.nodeid, kind=view, assets="../assets")
        except (OSError, ReportError) as error:
            result.flamegraph_error = reason(error)  # said once at the end (OutputLog); the test is unchanged
            return
        result.flamegraph_path = str(target)
        result.flamegraph_view = view.label
        try:
            self._what_grew(item, result, capture, target)
        except (OSError, ReportError) as error:
            result.flamegraph_error = reason(error)

    def _what_grew(self, item: pytest.Item, result: TestMemoryResult, capture: Capture, page: Path) -> None:
        """With a baseline that kept this test's locations and a peak that grew past the noise floor: the differential
        flame graph of the test against them, beside its own page."""
        session = self.config.pluginmanager.get_plugin("memprof-session")
        judge = getattr(session, "baseline", None)
        entry = judge.entries.get(item.nodeid) if judge is not None else None
        # Growth under the noise floor (--memprof-min-bytes) gets no page, as it never fails a test.
        if entry is None or not entry.locations or result.peak_bytes - entry.peak_bytes <= judge.min_bytes:
            return
        from ..ci.baseline import summary_rows
        from ..model import StackStat, View
        from ..reports.flamegraph import render_diff_flamegraph

        # The summary's paths are relative to the rootdir; the capture's are absolute.
        rootdir = str(self.config.rootpath)
        base = [StackStat(tuple(_absolute(frame, rootdir) for frame in frames), size, count)
                for frames, size, count in summary_rows(entry.locations)[View.PEAK]]
        target = page.with_name(page.stem + ".grew.html")
        render_diff_flamegraph(base, capture, target, title=f"What grew: {item.nodeid}", assets="../assets",
                               base_title="the baseline's largest locations")
        result.grew_path = str(target)

    def pytest_memprof_session_finish(self, results: Sequence[TestMemoryResult]) -> None:
        """Write the index; one line for the whole folder if any of its pages could not be written."""
        if not results:
            return
        lost = [result.flamegraph_error for result in results if result.flamegraph_error]
        try:
            self._write(results)
        except OSError as error:
            lost.append(reason(error))
        else:
            if not lost:
                self.log.notes.append(f"memprof: HTML report in {self.folder / 'index.html'}")
        tried = 1 + sum(1 for result in results if result.flamegraph_error or result.flamegraph_path)
        self.log.many(self.folder, "pages", tried, lost)

    def _write(self, results: Sequence[TestMemoryResult]) -> None:
        from ..ci import html_report
        from . import sysmon

        html_report.write_index(self.folder, results, compared=self.compared, title=self.title,
                                sys_samples=sysmon.sys_series(self.config), started_at=self._started_at,
                                ended_at=time.time())


def page_view(result: TestMemoryResult) -> View:
    """The view a test's page opens on: what it failed on (leaks for no_leaks and limit_leaks), else the peak."""
    leaks = (FailureKind.LEAKED, FailureKind.LEAKS_OVER_LIMIT, FailureKind.LEAKED_OBJECTS, FailureKind.UNCOLLECTABLE)
    if any(failure.kind in leaks for failure in result.failures) and not any(
            failure.about_peak for failure in result.failures):
        return View.LEAKS
    return View.PEAK


def _absolute(frame, rootdir: str):
    from ..model import Frame

    if os.path.isabs(frame.file) or frame.file.startswith("<"):
        return frame
    return Frame(frame.function, os.path.join(rootdir, frame.file), frame.line, frame.native,
                 first_line=frame.first_line)


def register(config: pytest.Config) -> None:
    """Register the outputs whose options are on (called at configure time, after the session plugin)."""
    # Compared with a baseline file or, for --memprof-fail-on-increase alone, with the previous run.
    compared = (options.resolve(config, "memprof_compare") is not None
                or options.resolve(config, "memprof_fail_on_increase") is not None)
    top_n = options.resolve(config, "memprof_top_n")
    summary = options.resolve(config, "memprof_summary")
    top: int | None = summary if top_n is None else (None if top_n == 0 else top_n)
    session = config.pluginmanager.get_plugin("memprof-session")
    log = OutputLog(getattr(session, "bin_dir", None))
    manager = config.pluginmanager
    manager.register(log, LOG_NAME)
    # pluggy calls the latest registered first: the system figures, the table, the annotations, then
    # the files, written and said in the order JUnit, baseline, CSV, HTML, step summary.
    html = options.resolve(config, "memprof_html")
    if github.active(options.resolve(config, "memprof_github")):
        manager.register(GitHub(Path(str(config.rootpath)), top or 10, compared, log), "memprof-github")
    if html:
        manager.register(HtmlReport(Path(html), Path(str(config.rootpath)).name, compared, config, log),
                         "memprof-html")
    csv_file = options.resolve(config, "memprof_csv_file")
    if csv_file:
        manager.register(CsvFile(csv_file, top or None, log), "memprof-csv")
    save_baseline = options.resolve(config, "memprof_save_baseline")
    if save_baseline:
        manager.register(BaselineFile(save_baseline, log), "memprof-baseline")
    if getattr(config, "cache", None) is not None:  # not with -p no:cacheprovider
        manager.register(CachedBaseline(config.cache), "memprof-cached-baseline")
    junit_file = options.resolve(config, "memprof_junit")
    if junit_file:
        manager.register(JUnitFile(junit_file, log), "memprof-junit")
    if summary > 0 if top_n is None else True:
        manager.register(Summary(top, compared), "memprof-summary")
    sys_interval = options.resolve(config, "memprof_sys")
    if sys_interval is not None:
        from .sysmon import PLUGIN_NAME, SystemMonitor

        manager.register(SystemMonitor(sys_interval), PLUGIN_NAME)
