"""``memprof transform``: a capture's stacks in other tools' formats (CSV, gprof2dot, speedscope, pprof).

Every writer is a function of a ``Capture`` and a view: the same rows the HTML reports show (one per
stack, thread and allocator), in the layout another tool reads. Column and field meanings are in
``docs/transform.md``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path

from .. import __version__
from ..capture import Capture
from ..model import Frame, StackStat, View
from . import pprof
from .calltree import report_view
from .output import write_report

# Format name -> file name extension of its default output.
FORMATS = {"csv": "csv", "gprof2dot": "json", "speedscope": "json", "pprof": "pb.gz"}

CSV_COLUMNS = ("bytes", "count", "thread_id", "thread_name", "allocator", "location", "stack")


def _frames(stat: StackStat, native: bool) -> tuple[Frame, ...]:
    """The stack's frames, outermost first; without ``native``, its Python frames only."""
    return stat.frames if native else tuple(frame for frame in stat.frames if not frame.native)


def _rows(capture: Capture, view: View, *, merge: bool) -> list[StackStat]:
    # The launcher's own allocations (pytest's, memprof run's) show no frames: they are not the program's.
    return [stat for stat in capture.stacks(view, merge_threads=merge, merge_allocators=merge) if not stat.launcher]


def _frame_name(frame: Frame) -> str:
    return f"{frame.function} at {frame.file}:{frame.line}"


def to_csv(capture: Capture, *, kind: View | str = View.PEAK, native: bool = False) -> str:
    """One row per allocation site (stack, thread, allocator): CSV_COLUMNS, the stack innermost first."""
    view = report_view(kind)
    names = {info.thread_id: info.name for info in capture.threads()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for stat in _rows(capture, view, merge=False):
        frames = _frames(stat, native)
        location = _frame_name(frames[-1]) if frames else ""
        # `function;file;line` per frame, innermost first and joined by "|" (memray's csv layout).
        stack = "|".join(f"{frame.function};{frame.file};{frame.line}" for frame in reversed(frames))
        writer.writerow(
            (stat.bytes, stat.count, stat.thread_id, names.get(stat.thread_id, ""), stat.allocator, location, stack)
        )
    return out.getvalue()


class _FrameTable:
    """Distinct frames in order of first use, so each is written once."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._ids: dict[Frame, int] = {}

    def id(self, frame: Frame) -> int:
        index = self._ids.get(frame)
        if index is None:
            index = self._ids[frame] = len(self.frames)
            self.frames.append(frame)
        return index


def to_gprof2dot(capture: Capture, *, kind: View | str = View.PEAK, native: bool = False) -> str:
    """The JSON gprof2dot reads (``gprof2dot -f json``): one event per stack, costs in bytes."""
    view = report_view(kind)
    functions = _FrameTable()
    events = []
    for stat in _rows(capture, view, merge=True):
        frames = _frames(stat, native)
        if not frames:
            continue
        # gprof2dot wants the callee first; functions are (name, file) so lines of one function
        # are one node of its call graph, as gprof2dot draws functions, not lines.
        chain = [functions.id(Frame(frame.function, frame.file, 0, frame.native)) for frame in reversed(frames)]
        events.append({"callchain": chain, "cost": [stat.bytes]})
    document = {
        "version": 0,
        "costs": [{"description": f"Memory {view.title}", "unit": "bytes"}],
        "functions": [{"name": frame.function, "module": frame.file} for frame in functions.frames],
        "events": events,
    }
    return json.dumps(document, indent=1)


SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def to_speedscope(capture: Capture, *, kind: View | str = View.PEAK, native: bool = False) -> str:
    """The speedscope file format: sampled profiles in bytes at the peak and of leaks (and of
    temporary allocations when that is the view asked for), opened on ``kind``'s."""
    view = report_view(kind)
    views = [View.PEAK, View.LEAKS] + ([View.TEMPORARY] if view is View.TEMPORARY else [])
    frames = _FrameTable()
    profiles = []
    for shown in views:
        samples, weights = [], []
        for stat in _rows(capture, shown, merge=True):
            stack = _frames(stat, native)
            if stack:
                samples.append([frames.id(frame) for frame in stack])  # outermost first, as speedscope wants
                weights.append(stat.bytes)
        profiles.append(
            {
                "type": "sampled",
                "name": f"Memory {shown.title}",
                "unit": "bytes",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        )
    document = {
        "$schema": SPEEDSCOPE_SCHEMA,
        "shared": {
            "frames": [{"name": frame.function, "file": frame.file, "line": frame.line} for frame in frames.frames]
        },
        "profiles": profiles,
        "name": capture.path.name if capture.path else "capture",
        "activeProfileIndex": views.index(view),
        "exporter": f"memprof {__version__}",
    }
    return json.dumps(document, separators=(",", ":"))


def to_pprof(capture: Capture, *, kind: View | str = View.PEAK, native: bool = False) -> bytes:
    """A gzipped profile.proto (what ``go tool pprof`` and Pyroscope read): bytes and counts per stack and thread."""
    view = report_view(kind)
    names = {info.thread_id: info.name for info in capture.threads()}
    samples: list[pprof.Sample] = []
    for stat in _rows(capture, view, merge=False):
        frames = _frames(stat, native)
        if not frames:
            continue
        labels = [("thread_id", stat.thread_id)]
        if names.get(stat.thread_id):
            labels.append(("thread_name", names[stat.thread_id]))
        if stat.allocator:
            labels.append(("allocator", stat.allocator))
        samples.append(pprof.Sample(tuple(reversed(frames)), (stat.bytes, stat.count), tuple(labels)))
    word = {View.PEAK: "peak", View.LEAKS: "leaked", View.TEMPORARY: "temporary"}[view]
    profile = pprof.encode_profile(
        sample_types=((f"{word}_space", "bytes"), (f"{word}_objects", "count")),
        samples=samples,
        time_nanos=int(capture.metadata.start_time * 1e9),
        duration_nanos=int(capture.duration * 1e9),
        comments=(f"memprof {__version__}: memory {view.title}", capture.metadata.command_line),
    )
    # mtime 0: the same capture gives the same bytes.
    return gzip.compress(profile, mtime=0)


WRITERS = {"csv": to_csv, "gprof2dot": to_gprof2dot, "speedscope": to_speedscope, "pprof": to_pprof}


def transform(
    capture: Capture,
    format_name: str,
    target: str | os.PathLike[str],
    *,
    kind: View | str = View.PEAK,
    native: bool = False,
) -> Path:
    """Write ``capture`` in ``format_name`` to ``target`` through a temporary file and return its path."""
    if format_name not in WRITERS:
        raise ValueError(f"unknown format {format_name!r}; expected one of {', '.join(WRITERS)}")
    return write_report(target, WRITERS[format_name](capture, kind=kind, native=native))


__all__ = ["CSV_COLUMNS", "FORMATS", "to_csv", "to_gprof2dot", "to_pprof", "to_speedscope", "transform"]
