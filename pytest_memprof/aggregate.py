"""Aggregated captures: the tracked process replays its own events and writes only the totals.

A full capture holds every allocation and free; a long run makes gigabytes of them. With
``Tracker(path, aggregate=True)`` (``memprof run --aggregate``) the events go to memory, a
background thread feeds them to a reader as the program runs, and at stop the file receives
only what reports need: per stack, thread and allocator the bytes and counts at the peak, at
the end (leaks), in total and in temporary allocations, plus the heap/RSS timeline, the size
histogram and the frame and stack tables. Every report works on it except ``--temporal``
(when each allocation happened is not kept). While the program runs the thread also writes a
snapshot of the totals so far, without a trailer, every ``snapshot_interval`` seconds (10 ms
at first, then growing): a program that dies (SIGKILL, a crash, a signal) leaves the last
snapshot, which reads as truncated; a normal stop, and ``os._exit`` (through the tracker's
``_exit`` hook), replace it with the whole capture. With ``native=True`` the totals keep hybrid
stacks; with ``follow_fork=True`` each forked child starts an aggregator of its own (a fork hook
in ``tracker.py``) for ``FILE.<pid>``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from . import _tracker
from ._reader import CaptureReader

# How often the background thread moves events from the tracker's memory buffer to the reader:
# every 10 ms at first, then every twentieth of the time tracked, at most every 100 ms (as the
# streaming mode flushes), so that a short process, a forked child ending in os._exit above
# all, still leaves a snapshot.
FIRST_DRAIN_S = 0.01
MAX_DRAIN_INTERVAL_S = 0.1
# Snapshots of the totals: the first after this, then every tenth of the time tracked, at most this.
FIRST_SNAPSHOT_S = 0.01
MAX_SNAPSHOT_INTERVAL_S = 5.0


def drain_interval(tracked_s: float) -> float:
    """Seconds between two drains of the tracker's memory buffer after ``tracked_s`` seconds of tracking."""
    return min(MAX_DRAIN_INTERVAL_S, max(FIRST_DRAIN_S, tracked_s / 20))


def snapshot_interval(tracked_s: float) -> float:
    """Seconds between two snapshots of an aggregated capture after ``tracked_s`` seconds of tracking."""
    return min(MAX_SNAPSHOT_INTERVAL_S, max(FIRST_SNAPSHOT_S, tracked_s / 10))


class Aggregator:
    """Feeds the tracker's in-memory records to a reader from a background thread until ``finish()``."""

    def __init__(self, path: Path | None = None, header: dict | None = None) -> None:
        self.reader = CaptureReader()
        self._path = path
        self._header = header or {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memprof-aggregator", daemon=True)

    def start(self) -> None:
        """Start the thread; call before the tracker starts, so that even its start is not recorded."""
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        # This thread's own allocations are not the program's.
        _tracker.ignore_this_thread()
        self._ready.set()
        started = last_snapshot = time.monotonic()
        while not self._stop.wait(drain_interval(time.monotonic() - started)):
            self.reader.feed(_tracker.drain())
            now = time.monotonic()
            if self._path is not None and now - last_snapshot >= snapshot_interval(now - started):
                last_snapshot = now
                try:
                    write_aggregated_capture(self._path, self.reader, {**self._header, "pid": os.getpid()}, whole=False)
                except OSError:
                    pass  # the final write at stop reports a disk that cannot take the file

    def halt(self) -> None:
        """Stop the background thread (before the tracker stops: only one thread may drain)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> CaptureReader:
        """Replay what the tracker handed over at stop and return the reader (after ``halt()`` and stop)."""
        self.reader.feed(_tracker.drain())
        return self.reader


def write_aggregated_capture(path: Path, reader: CaptureReader, header: dict, whole: bool = True) -> None:
    """Write an aggregated capture of what ``reader`` holds, with ``header``; raises OSError if it cannot.

    ``whole=False``: a snapshot of a run still going, which reads as truncated.
    """
    reader.write_aggregated_capture(path, json.dumps({**header, "aggregated": True}), whole)
