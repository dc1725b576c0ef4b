"""The HTML flame graph: one self-contained file with our own script and the capture's call tree.

The page gets a frame table and a trie of nodes (see ``calltree``), the bytes and counts at each
stack's node per thread, the heap/RSS timeline and, with ``temporal``, allocation intervals; the
script builds whatever view the reader asks for (thread, inverted, time range) from those.
"""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import launcher
from .._reader import encode_varints
from ..capture import Capture
from ..model import StackStat, View
from .calltree import CallTree, report_view
from .output import write_report
from .page import render_page
from .sources import frame_sources

# A chart is at most ~1,000 px wide: more timeline points than this only add bytes.
MAX_TIMELINE_POINTS = 2000


def _timeline(capture: Capture, most: int = MAX_TIMELINE_POINTS) -> list[int]:
    """Flat [ms, heap, rss, ...], thinned to the highest heap per bucket when longer than ``most`` points."""
    points = capture.timeline()
    if len(points) > most:
        step = len(points) / most
        buckets = [points[int(i * step):int((i + 1) * step)] for i in range(most)]
        points = [max(bucket, key=lambda point: point.heap_bytes) for bucket in buckets if bucket]
    flat: list[int] = []
    for point in points:
        flat.extend((round(point.time_s * 1000), point.heap_bytes, point.rss_bytes))
    return flat


# Frames the page can hide (data["frame_flags"], one per frame): Python's import system, and the
# machinery around a program or a test (the launcher rule's files: pytest, pluggy, runpy, ours).
IMPORT_SYSTEM, IRRELEVANT = 1, 2
_IRRELEVANT = launcher.Launcher((*launcher.PYTEST, *launcher.MEMPROF_RUN))


def frame_flags(file: str, native: bool) -> int:
    """Which of the page's "hide" toggles hide a frame in ``file`` (IMPORT_SYSTEM, IRRELEVANT bits)."""
    if native:
        return 0
    flags = IMPORT_SYSTEM if file.startswith("<frozen ") or "/importlib/" in file else 0
    if _IRRELEVANT.is_launcher_file(file):
        flags |= IRRELEVANT
    return flags


def _threads(capture: Capture, thread_ids: set[int]) -> tuple[list[list[Any]], dict[int, int]]:
    threads = [[info.thread_id, info.name] for info in capture.threads()]
    known = {info[0] for info in threads}
    threads.extend([tid, ""] for tid in sorted(thread_ids - known))
    return threads, {tid: index for index, (tid, _) in enumerate(threads)}


def _pack_intervals(rows: list[tuple[int, int, int, int, int, int]], *, with_threads: bool) -> tuple[str, list[int]]:
    """Intervals (node, thread, allocated ms, freed ms or -1, bytes, count) as deflated varints, and the ticks.

    Temporal data is most of a temporal report (one row per stack and pair of ticks), so rows are
    sorted by stack and delta-coded: a typical row takes 4 to 6 bytes instead of ~26 JSON characters.
    Per row: node delta; thread (only when there are several); allocation tick index, as a delta
    from the previous row of the same node and thread; 0 if never freed, else ticks lived + 1;
    bytes * 2 + (count != 1); then count, only when it is not 1.
    """
    ticks = sorted({row[2] for row in rows} | {row[3] for row in rows if row[3] >= 0})
    tick_index = {tick: index for index, tick in enumerate(ticks)}
    values: list[int] = []
    previous_node = previous_thread = previous_tick = 0
    for node, thread, allocated, freed, size, count in sorted(rows, key=lambda row: (row[0], row[1], row[2])):
        tick = tick_index[allocated]
        if node != previous_node or thread != previous_thread:
            previous_tick = 0
        values.append(node - previous_node)
        if with_threads:
            values.append(thread)
        values.append(tick - previous_tick)
        values.append(0 if freed < 0 else max(1, tick_index[freed] - tick + 1))
        values.append(size * 2 + (count != 1))
        if count != 1:
            values.append(count)
        previous_node, previous_thread, previous_tick = node, thread, tick
    packed = encode_varints(values)  # the capture format's varints (C++)
    # Rows of one stack repeat the same few byte patterns: deflate takes them down 10x to 50x more,
    # and every browser can inflate natively (DecompressionStream).
    return base64.b64encode(zlib.compress(packed, 9)).decode("ascii"), ticks


def flamegraph_data(capture: Capture, *, kind: View | str = View.PEAK, temporal: bool = False, title: str = "",
                    inverted: bool = False, split_threads: bool = False, max_memory_records: int | None = None,
                    confidential_files: str = "default") -> dict[str, Any]:
    """Everything the flame graph page shows, as a JSON-ready dict of flat arrays.

    ``max_memory_records`` caps the heap chart's points (memray's option); ``confidential_files``
    says whose source lines the tooltips may show (see ``sources``)."""
    view = report_view(kind)
    tree = CallTree()
    stats = capture.stacks(view, merge_threads=False)
    intervals = capture.temporal_stacks() if temporal else []
    threads, thread_index = _threads(capture, {s.thread_id for s in stats} | {i.thread_id for i in intervals})
    samples: list[int] = []
    for stat in stats:
        samples.extend((tree.add(stat.frames), thread_index[stat.thread_id], stat.bytes, stat.count))
    packed_intervals, ticks = _pack_intervals(
        [(tree.add(interval.frames), thread_index[interval.thread_id], round(interval.allocated_s * 1000),
          -1 if interval.freed_s is None else round(interval.freed_s * 1000), interval.bytes, interval.count)
         for interval in intervals],
        with_threads=len(threads) > 1,
    )
    sources = frame_sources(tree, confidential_files)
    frames, nodes = tree.packed()
    strings = tree.strings
    flags = [frame_flags(strings[file], native) for _, file, _, native in tree.frames]
    meta = capture.metadata
    return {
        "title": title,
        "kind": view.label,
        "kind_title": view.title,
        "options": {"temporal": temporal, "inverted": inverted, "split_threads": split_threads},
        "strings": tree.strings,
        "frames": frames,
        "sources": sources,
        "frame_flags": flags,
        "nodes": nodes,
        "threads": threads,
        "samples": samples,
        "intervals": packed_intervals if temporal else None,
        "ticks": ticks,
        "timeline": _timeline(capture, max_memory_records or MAX_TIMELINE_POINTS),
        "duration_ms": round(capture.duration * 1000),
        "peak_ms": round(capture.peak_time_s * 1000),
        "peak_bytes": capture.peak_bytes,
        "leaked_bytes": capture.leaked_bytes,
        "total_allocations": capture.total_allocations,
        "truncated": capture.truncated,
        "command_line": meta.command_line,
    }


def diff_flamegraph_data(base: Capture | Sequence[StackStat], new: Capture, *, kind: View | str = View.PEAK,
                         title: str = "", inverted: bool = False, native: bool = False,
                         base_title: str | None = None) -> dict[str, Any]:
    """The differential flame graph's data: ``new``'s stacks as ``samples``, ``base``'s as
    ``base_samples`` in the same call tree (their lines moved onto ``new``'s where functions moved,
    so the same code is the same frame), threads merged. ``base`` may be stacks already read."""
    from ..diff import aligned_stacks

    view = report_view(kind)
    base_stats, new_stats = aligned_stacks(base, new, view, native=native)
    data = flamegraph_data(new, kind=view, title=title, inverted=inverted)
    tree = CallTree()
    samples: list[int] = []
    base_samples: list[int] = []
    for stats, out in ((new_stats, samples), (base_stats, base_samples)):
        for stat in stats:
            out.extend((tree.add(stat.frames), 0, stat.bytes, stat.count))
    # The tree is rebuilt from both captures: its frames' sources and flags go with it.
    sources = frame_sources(tree, "default")
    frames, nodes = tree.packed()
    flags = [frame_flags(tree.strings[file], native) for _, file, _, native in tree.frames]
    data.update(strings=tree.strings, frames=frames, nodes=nodes, samples=samples, base_samples=base_samples,
                sources=sources, frame_flags=flags,
                threads=[[0, "all threads"]],
                base_title=base_title or (base.path.name if isinstance(base, Capture) and base.path else "base"))
    return data


SCRIPTS = ("timeline.js", "flamegraph.js")


def render_flamegraph_html(capture: Capture, *, title: str | None = None, kind: View | str = View.PEAK,
                           temporal: bool = False, inverted: bool = False, split_threads: bool = False,
                           assets: str | None = None, max_memory_records: int | None = None,
                           confidential_files: str = "default") -> str:
    """The flame graph page for ``capture`` as one HTML string (linking ``assets``, see render_page)."""
    if title is None:
        title = capture.path.name if capture.path else "capture"
    data = flamegraph_data(capture, kind=kind, temporal=temporal, title=title, inverted=inverted,
                           split_threads=split_threads, max_memory_records=max_memory_records,
                           confidential_files=confidential_files)
    return render_page("flamegraph.html", capture, title=title, kind=kind, data=data,
                       scripts=SCRIPTS, assets=assets, empty=not data["samples"], temporal=temporal)


def render_flamegraph(capture: Capture, target: str | os.PathLike[str], *, title: str | None = None,
                      kind: View | str = View.PEAK, temporal: bool = False, inverted: bool = False,
                      split_threads: bool = False, assets: str | None = None, max_memory_records: int | None = None,
                      confidential_files: str = "default") -> Path:
    """Write the flame graph of ``capture`` to ``target`` (creating its folder) and return its path."""
    html = render_flamegraph_html(capture, title=title, kind=kind, temporal=temporal, inverted=inverted,
                                  split_threads=split_threads, assets=assets, max_memory_records=max_memory_records,
                                  confidential_files=confidential_files)
    return write_report(target, html)


def render_diff_flamegraph(base: Capture | Sequence[StackStat], new: Capture, target: str | os.PathLike[str], *,
                           title: str | None = None, kind: View | str = View.PEAK, inverted: bool = False,
                           native: bool = False, assets: str | None = None, base_title: str | None = None) -> Path:
    """Write the differential flame graph of ``new`` against ``base`` to ``target`` and return its path.

    Frames are sized by ``new`` (a toggle sizes them by ``base``) and coloured red where they grew,
    blue where they shrank. ``base`` may be stacks already read (a baseline's), named ``base_title``."""
    if title is None:
        base_name = base_title or (base.path.name if isinstance(base, Capture) and base.path else "base")
        title = f"{base_name} -> {new.path.name if new.path else 'new'}"
    data = diff_flamegraph_data(base, new, kind=kind, title=title, inverted=inverted, native=native,
                                base_title=base_title)
    html = render_page("flamegraph.html", new, title=title, kind=kind, data=data, scripts=SCRIPTS, assets=assets,
                       empty=not (data["samples"] or data["base_samples"]), temporal=False, diff=True)
    return write_report(target, html)
