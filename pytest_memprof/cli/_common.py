"""Helpers shared by the report subcommands: opening a capture with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

from ..capture import Capture

# Below this size a capture reads in well under a second (a 6 MB one of 4.4M events in 0.4 s):
# a progress bar would only flicker.
PROGRESS_THRESHOLD = 4 << 20


def open_capture(path: str, *, temporal: bool = False, show_interpreter_frames: bool = False) -> Capture:
    """Open a capture, showing a rich progress bar on a terminal for large files."""
    file = Path(path)
    size = file.stat().st_size if file.is_file() else 0
    if size < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        return Capture.open(file, temporal=temporal, show_interpreter_frames=show_interpreter_frames)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task(f"reading {file.name}", total=size)
        return Capture.open(file, temporal=temporal, show_interpreter_frames=show_interpreter_frames,
                            progress=lambda done, total: progress.update(task, completed=done))
