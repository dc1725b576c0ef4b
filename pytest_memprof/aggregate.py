"""Aggregated captures: the tracked process replays its own events and writes only the totals.

A full capture holds every allocation and free; a long run makes gigabytes of them. With
``Tracker(path, aggregate=True)`` (``memprof run --aggregate``) the events go to memory, a
background thread feeds them to a reader as the program runs, and at stop the file receives
only what reports need: per stack, thread and allocator the bytes and counts at the peak, at
the end (leaks), in total and in temporary allocations, plus the heap/RSS timeline, the size
histogram and the frame and stack tables. Every report works on it except ``--temporal``
(when each allocation happened is not kept). While the program runs the thread also writes a
snapshot of the totals so far, without a trailer, every ``snapshot_interval`` seconds (10 ms
at first, then growing): a program that dies (SIGKILL, a crash: SIGSEGV, SIGBUS, SIGABRT)
leaves the last snapshot, which reads as truncated; a normal stop, and ``os._exit`` (through the
tracker's ``_exit`` hook), replace it with the whole capture. So do SIGTERM and SIGINT where their
action is the default (a C handler of the tracker's, installed only then, defers them and wakes
the thread, which writes the capture whole and lets the process die of the signal; if it cannot
within 2 s, its GIL held by a long C call say, the tracker's sampler ends the process all the
same, with the last snapshot). A program's own SIGTERM handler is left to run, and Python's own
SIGINT handler raises KeyboardInterrupt: a program that then exits normally writes its capture at
atexit. A crash cannot run Python, so the snapshot is all it keeps. With ``native=True`` the totals
keep hybrid stacks; with ``follow_fork=True`` each forked child starts an aggregator of its own (a
fork hook in ``tracker.py``) for ``FILE.<pid>``, and defers its signals to it the same way (the
workers of ``with multiprocessing.Pool()``, which leaving the block sends SIGTERM).
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from collections.abc import Callable
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
    """Feeds the tracker's in-memory records to a reader from a background thread until ``finish()``.

    ``on_signal(aggregator)`` is called on that thread when a SIGTERM or SIGINT was deferred for
    the capture to be written (native/tracker.cc); it is expected not to return.
    """

    def __init__(
        self,
        path: Path | None = None,
        header: dict | None = None,
        on_signal: Callable[[Aggregator], None] | None = None,
    ) -> None:
        self.reader = CaptureReader()
        self._path = path
        self._header = header or {}
        self._on_signal = on_signal
        self._stop = threading.Event()
        self._ready = threading.Event()
        # The thread waits on this pipe: halt() writes to it, and so does the native handler of a
        # deferred signal, which can do nothing more in a signal handler than write a byte.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="memprof-aggregator", daemon=True)

    def start(self) -> None:
        """Start the thread; call before the tracker starts, so that even its start is not recorded."""
        _tracker.set_signal_wakeup(self._wake_write)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        # This thread's own allocations are not the program's.
        _tracker.ignore_this_thread()
        self._ready.set()
        waiting = select.poll()
        waiting.register(self._wake_read, select.POLLIN)
        started = last_snapshot = time.monotonic()
        while True:
            if waiting.poll(1000 * drain_interval(time.monotonic() - started)):
                os.read(self._wake_read, 4096)
            if self._stop.is_set():
                return  # a deferred signal meanwhile is stop()'s to act on, once it wrote the capture
            if _tracker.pending_signal() and self._on_signal is not None:
                self._on_signal(self)
                return
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
        if self._closed:
            return
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # full: the thread has wake-ups enough waiting
        if self._thread.is_alive():
            self._thread.join()
        _tracker.set_signal_wakeup(-1)
        self.forget_pipe()

    def forget_pipe(self) -> None:
        """Close the wake-up pipe without a word to the thread (in a fork child, where the thread is gone)."""
        if not self._closed:
            self._closed = True
            os.close(self._wake_read)
            os.close(self._wake_write)

    def finish(self) -> CaptureReader:
        """Replay what the tracker handed over at stop and return the reader (after ``halt()`` and stop)."""
        self.reader.feed(_tracker.drain())
        return self.reader


def write_aggregated_capture(path: Path, reader: CaptureReader, header: dict, whole: bool = True) -> None:
    """Write an aggregated capture of what ``reader`` holds, with ``header``; raises OSError if it cannot.

    ``whole=False``: a snapshot of a run still going, which reads as truncated.
    """
    reader.write_aggregated_capture(path, json.dumps({**header, "aggregated": True}), whole)
