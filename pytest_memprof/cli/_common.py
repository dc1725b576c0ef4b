"""Helpers shared by the report subcommands: opening a capture with a progress bar."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..capture import Capture

# A read that ends sooner shows no bar (it would only flicker); a longer one shows it from then
# on. File size cannot tell in advance: a megabyte may hold 50,000 events or 5 million.
# MEMPROF_PROGRESS_DELAY (seconds) overrides it; the tests set 0.
PROGRESS_DELAY_S = 0.5


def progress_wanted() -> bool:
    """Whether to show the bar: on a terminal's stderr, or wherever MEMPROF_PROGRESS=always says
    (never: not even on a terminal); a pipe or a CI log gets none unless asked."""
    wanted = os.environ.get("MEMPROF_PROGRESS", "auto")
    return wanted == "always" or (wanted != "never" and sys.stderr.isatty())


class _DelayedProgress:
    """A transient rich progress bar that appears only once a read has taken PROGRESS_DELAY_S."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._delay = float(os.environ.get("MEMPROF_PROGRESS_DELAY", PROGRESS_DELAY_S))
        self._started = time.monotonic()
        self._progress = None
        self._task = None

    def update(self, done: int, total: int) -> None:
        if self._progress is None:
            if time.monotonic() - self._started < self._delay:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            # On stderr: stdout is the report (tree, summary) and may be piped to a file.
            # Shown on a terminal, or where MEMPROF_PROGRESS=always asks for it even without one.
            console = Console(stderr=True, force_terminal=True)
            self._progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                      TimeRemainingColumn(), transient=True, console=console)
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=total)
            self._progress.update(self._task, completed=done, refresh=True)  # drawn now, not at the next tick
            return
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def open_capture(path: str, *, temporal: bool = False, show_interpreter_frames: bool = False) -> Capture:
    """Open a capture, showing a rich progress bar on a terminal when reading it takes a while."""
    file = Path(path)
    if not progress_wanted():
        return Capture.open(file, temporal=temporal, show_interpreter_frames=show_interpreter_frames)
    bar = _DelayedProgress(f"reading {file.name}")
    try:
        return Capture.open(file, temporal=temporal, show_interpreter_frames=show_interpreter_frames,
                            progress=bar.update)
    finally:
        bar.close()
