"""``--memprof-sys[=INTERVAL]``: the machine's memory, swap and CPU and this process's RSS, sampled during the session.

A daemon thread samples through the same collectors as ``memprof sys`` every INTERVAL seconds from session
start to session end; the terminal summary shows the minimum and maximum of each figure and the HTML
index (``--memprof-html``) charts the series. When a test runs out of memory, this says whether the
machine was short of it too.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil
import pytest

from ..errors import UsageError
from ..sizes import format_size
from ..sysstats.plugins import Cpu, Mem, MemSwap

PLUGIN_NAME = "memprof-sysmon"
DEFAULT_INTERVAL = 1.0
THREAD_NAME = "memprof-sysmon"
WORKER_OUTPUT_KEY = "memprof_sys_rss"


def parse_interval(text: str) -> float | None:
    """An interval in seconds (> 0); ``true``/``on`` mean the default, ``false``/``off`` turn sampling off."""
    lowered = str(text).strip().lower()
    if lowered in ("true", "yes", "on"):
        return DEFAULT_INTERVAL
    if lowered in ("false", "no", "off"):
        return None
    try:
        value = float(lowered)
    except ValueError:
        raise UsageError(f"expected an interval in seconds, got {text!r} (write --memprof-sys=INTERVAL, "
                         "or put --memprof-sys after the test paths)") from None
    if not 0 < value < float("inf"):
        raise UsageError(f"the interval must be more than 0 seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class SystemSample:
    """One sample: seconds since the session started, and the figures at that moment."""

    seconds: float
    mem_used: int
    mem_percent: float
    memswap_used: int
    memswap_percent: float
    cpu_total: float
    process_rss: int


# (field, label in the summary, how to show a value)
FIGURES = (
    ("mem_used", "system memory used", format_size),
    ("mem_percent", "system memory used (%)", lambda value: f"{value:.1f}%"),
    ("memswap_used", "swap used", format_size),
    ("cpu_total", "CPU busy (all cores)", lambda value: f"{value:.1f}%"),
    ("process_rss", "this pytest process's RSS", format_size),
)


class SystemMonitor:
    """Session plugin: starts the sampling thread at session start, stops it at session end (Ctrl-C too)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[SystemSample] = []
        # Under xdist, the tests run in the workers: the controller keeps each worker's RSS series.
        self.worker_rss: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.perf_counter()
        self._process = psutil.Process(os.getpid())
        self._mem, self._swap, self._cpu = Mem(), MemSwap(), Cpu()
        self.error: str | None = None

    def _sample(self) -> None:
        mem, swap, cpu = self._mem.collect(), self._swap.collect(), self._cpu.collect()
        self.samples.append(SystemSample(
            seconds=round(time.perf_counter() - self._started, 3), mem_used=mem["used"], mem_percent=mem["percent"],
            memswap_used=swap["used"], memswap_percent=swap["percent"], cpu_total=cpu["total"],
            process_rss=self._process.memory_info().rss))

    def _run(self) -> None:
        # Our samples are not the test's memory: without this, --memprof counted every psutil call and
        # every kept sample in the running test's peak and leaks (82 KiB "leaked" by an idle test).
        from .. import _tracker

        _tracker.ignore_this_thread()
        try:
            self._sample()
            while not self._stop.wait(self.interval):
                self._sample()
        except Exception as error:  # psutil failing mid-session must not take the test run down
            self.error = f"{type(error).__name__}: {error}"

    def start(self) -> None:
        """Start sampling (once)."""
        if self._thread is None:
            self._started = time.perf_counter()
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread; takes one last sample so short sessions have two."""
        if self._thread is None or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        if self.error is None:
            try:
                self._sample()
            except Exception as error:  # same reason as in _run
                self.error = f"{type(error).__name__}: {error}"

    def series(self) -> list[dict[str, Any]]:
        """The samples as JSON-ready dicts (for the HTML index)."""
        return [asdict(sample) for sample in self.samples]

    def summary_lines(self) -> list[str]:
        """Minimum and maximum of each figure, one line each."""
        if not self.samples:
            return ["no samples were taken"]
        rows = []
        for field, label, show in FIGURES:
            values = [getattr(sample, field) for sample in self.samples]
            rows.append((label, show(min(values)), show(max(values))))
        worker_values = [rss for series in self.worker_rss.values() for rss in series]
        if worker_values:
            rows.append((f"xdist workers' RSS ({', '.join(sorted(self.worker_rss))})",
                         format_size(min(worker_values)), format_size(max(worker_values))))
        width = max(len(label) for label, _, _ in rows)
        lines = [f"{label:<{width}}  min {low:>10}   max {high:>10}" for label, low, high in rows]
        if self.error:
            lines.append(f"sampling stopped early: {self.error}")
        return lines

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start sampling."""
        self.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Stop sampling before the reports that use the series are written; a worker hands its RSS on."""
        self.stop()
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[WORKER_OUTPUT_KEY] = [sample.process_rss for sample in self.samples]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: keep the RSS series of a worker that finished."""
        series = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if series is not None:
            self.worker_rss[str(getattr(node.gateway, "id", "worker"))] = list(series)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Make sure the thread is gone even when the session never finished normally."""
        self.stop()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Min and max of each figure over the session."""
        count = len(self.samples)
        terminalreporter.write_sep("=", f"memprof: system during the session ({count} sample(s), "
                                        f"every {self.interval:g} s)")
        for line in self.summary_lines():
            terminalreporter.write_line(line)


def sys_series(config: pytest.Config) -> list[dict[str, Any]] | None:
    """The session's samples when --memprof-sys is on, else None."""
    monitor = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return monitor.series() if monitor is not None else None
