"""``memprof summary``: a terminal table by function with total (inclusive) and own bytes and counts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import terminal
from ..capture import Capture
from ..model import View
from ..sizes import format_size
from .calltree import report_view

SORT_COLUMNS = ("total-bytes", "own-bytes", "total-count", "own-count", "function")


@dataclass
class FunctionRow:
    """One function's share: ``total_*`` counts stacks passing through it, ``own_*`` those it allocated in."""

    function: str
    file: str
    total_bytes: int = 0
    own_bytes: int = 0
    total_count: int = 0
    own_count: int = 0


def summary_rows(capture: Capture, *, kind: View | str = View.PEAK,
                 sort_column: str = "total-bytes") -> list[FunctionRow]:
    """Rows by (function, file), sorted by ``sort_column`` (largest first; names A to Z)."""
    view = report_view(kind)
    if sort_column not in SORT_COLUMNS:
        raise ValueError(f"unknown sort column {sort_column!r}")
    rows: dict[tuple[str, str], FunctionRow] = {}
    for stat in capture.stacks(view):
        frames = stat.frames
        # A recursive function appears several times on one stack; its total counts the stack once.
        for key in {(frame.function, frame.file) for frame in frames}:
            row = rows.get(key) or rows.setdefault(key, FunctionRow(*key))
            row.total_bytes += stat.bytes
            row.total_count += stat.count
        if frames:
            key = (frames[-1].function, frames[-1].file)
            row = rows.get(key) or rows.setdefault(key, FunctionRow(*key))
            row.own_bytes += stat.bytes
            row.own_count += stat.count
    if sort_column == "function":
        return sorted(rows.values(), key=lambda row: (row.function, row.file))
    attribute = sort_column.replace("-", "_")
    return sorted(rows.values(), key=lambda row: (-getattr(row, attribute), row.function, row.file))


def print_summary(capture: Capture, *, console: Console | None = None, kind: View | str = View.PEAK,
                  sort_column: str = "total-bytes", max_rows: int = 20) -> None:
    """Print the summary table to ``console``."""
    view = report_view(kind)
    console = console or terminal.console()
    if capture.truncated:
        console.print(Text(f"This capture is truncated: {terminal.printable(capture.truncation)}. "
                           "The summary covers what was decoded.", style="bold yellow"))
    rows = summary_rows(capture, kind=kind, sort_column=sort_column)
    if not rows:
        console.print(capture.no_allocations_text if not capture.total_allocations
                      else f"No memory {view.title} in this capture.")
        return
    whole = sum(stat.bytes for stat in capture.stacks(view))
    table = Table(title=Text(f"Memory {view.title} by function ({format_size(whole)} in all; "
                             f"{min(max_rows, len(rows))} of {len(rows):,} functions)"))
    # Short headers leave the width to the locations; the caption says what each column is.
    table.caption = Text("total: in the function or what it called; own: allocated in the function itself")
    table.add_column("function  file", overflow="fold", ratio=1)
    for name in ("total", "%", "own", "allocs", "own allocs"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows[:max_rows]:
        # Text cells: names from user code may contain "[...]", which markup would swallow.
        # printable(): control characters in them show as escapes instead of acting on the terminal.
        location = Text(terminal.printable(row.function), style="bold")
        location.append(f" {terminal.printable(row.file)}", style="cyan")
        table.add_row(location, format_size(row.total_bytes),
                      f"{100 * row.total_bytes / whole:.1f}%" if whole else "-", format_size(row.own_bytes),
                      f"{row.total_count:,}", f"{row.own_count:,}")
    console.print(table)
