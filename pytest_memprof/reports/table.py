"""The HTML table of allocations at the peak (or leaked, or temporary): sortable and filterable.

One row per stack and allocator (and thread, with ``split_threads``); the page gets the same
compact call tree as the flame graph, so a click on a row can show the row's whole stack without
repeating strings per row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..capture import Capture
from ..model import View
from .calltree import CallTree, report_view
from .output import write_report
from .page import render_page
from .sources import frame_sources


def table_data(capture: Capture, *, kind: View | str = View.PEAK, title: str = "", split_threads: bool = False,
               confidential_files: str = "default") -> dict[str, Any]:
    """Rows of the table as a JSON-ready dict: a call tree and flat [node, thread, allocator, bytes, count].

    Threads are merged (thread id 0) unless ``split_threads``, as memray's table does."""
    view = report_view(kind)
    tree = CallTree()
    stats = capture.stacks(view, merge_threads=not split_threads, merge_allocators=False)
    names = {info.thread_id: info.name for info in capture.threads()}
    thread_ids = sorted({stat.thread_id for stat in stats})
    thread_index = {tid: index for index, tid in enumerate(thread_ids)}
    allocators: dict[str, int] = {}
    rows: list[int] = []
    for stat in stats:
        allocator = allocators.setdefault(stat.allocator or "?", len(allocators))
        rows.extend((tree.add(stat.frames), thread_index[stat.thread_id], allocator, stat.bytes,
                     stat.count))
    sources = frame_sources(tree, confidential_files)
    frames, nodes = tree.packed()
    return {
        "title": title,
        "kind": view.label,
        "strings": tree.strings,
        "frames": frames,
        "sources": sources,
        "nodes": nodes,
        "threads": [[tid, names.get(tid, "")] for tid in thread_ids],
        "allocators": list(allocators),
        "rows": rows,
    }


def render_table_html(capture: Capture, *, title: str | None = None, kind: View | str = View.PEAK,
                      split_threads: bool = False, confidential_files: str = "default") -> str:
    """The table page for ``capture`` as one HTML string."""
    if title is None:
        title = capture.path.name if capture.path else "capture"
    data = table_data(capture, kind=kind, title=title, split_threads=split_threads,
                      confidential_files=confidential_files)
    return render_page("table.html", capture, title=title, kind=kind, data=data, scripts=("table.js",),
                       empty=not data["rows"])


def render_table(capture: Capture, target: str | os.PathLike[str], *, title: str | None = None,
                 kind: View | str = View.PEAK, split_threads: bool = False,
                 confidential_files: str = "default") -> Path:
    """Write the allocation table of ``capture`` to ``target`` (creating its folder) and return its path."""
    return write_report(target, render_table_html(capture, title=title, kind=kind, split_threads=split_threads,
                                                  confidential_files=confidential_files))
