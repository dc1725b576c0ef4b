"""Aggregated captures: the tracked process replays its own events and writes only the totals.

A full capture holds every allocation and free; a long run makes gigabytes of them. With
``Tracker(path, aggregate=True)`` (``memprof run --aggregate``) the events go to memory, a
background thread feeds them to a reader as the program runs, and at stop the file receives
only what reports need: per stack, thread and allocator the bytes and counts at the peak, at
the end (leaks), in total and in temporary allocations, plus the heap/RSS timeline, the size
histogram and the frame and stack tables. Every report works on it except ``--temporal``
(when each allocation happened is not kept). Nothing is written if the process dies first.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from . import _tracker
from ._encoding import AGG_SAMPLE, AGG_STACK, AGG_SUMMARY, THREAD, TRAILER, prelude, varint, write_capture
from ._reader import NativeReader, allocator_name

# How often the background thread moves events from the tracker's memory buffer to the reader.
DRAIN_INTERVAL_S = 0.1

_KINDS = {allocator_name(kind): kind for kind in range(1, 32) if allocator_name(kind)}


class Aggregator:
    """Feeds the tracker's in-memory records to a reader from a background thread until ``finish()``."""

    def __init__(self) -> None:
        self.reader = NativeReader()
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
        while not self._stop.wait(DRAIN_INTERVAL_S):
            self.reader.feed(_tracker.drain())

    def halt(self) -> None:
        """Stop the background thread (before the tracker stops: only one thread may drain)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> NativeReader:
        """Replay what the tracker handed over at stop and return the reader (after ``halt()`` and stop)."""
        self.reader.feed(_tracker.drain())
        return self.reader


def aggregated_records(reader: NativeReader) -> bytes:
    """The record stream of an aggregated capture holding everything ``reader`` has aggregated."""
    out = prelude(reader)
    for tid in reader.threads_seen():  # keeps the order threads were first seen in
        out.append(THREAD)
        varint(tid, out)
    rows: dict[tuple[int, int, int], list[int]] = {}
    for slot, which in enumerate(("peak", "leaks", "total", "temporary")):
        for stack, tid, allocator, size, count in reader.rows(which, False, False):
            cell = rows.setdefault((tid, _KINDS[allocator], stack), [0] * 8)
            cell[2 * slot] = size
            cell[2 * slot + 1] = count
    for (tid, kind, stack), values in rows.items():
        out.append(AGG_STACK)
        for value in (tid, kind, stack, *values):
            varint(value, out)
    for ms, heap, rss in reader.timeline():
        out.append(AGG_SAMPLE)
        varint(ms, out)
        varint(heap, out)
        varint(rss, out)
    buckets = [0] * 65
    for upper_bound, count in reader.size_histogram():
        buckets[upper_bound.bit_length() - 1] = count
    out.append(AGG_SUMMARY)
    for value in (reader.peak_bytes, reader.peak_ms, reader.unmatched_frees, len(buckets), *buckets):
        varint(value, out)
    out.append(TRAILER)
    varint(reader.end_ms, out)
    varint(reader.records, out)
    return bytes(out)


def write_aggregated_capture(path: Path, reader: NativeReader, header: dict) -> None:
    """Write an aggregated capture of what ``reader`` holds, with ``header`` (marked aggregated)."""
    write_capture(path, json.dumps({**header, "aggregated": True}).encode(), aggregated_records(reader))
