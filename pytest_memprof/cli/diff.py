"""``memprof diff``: what grew and what shrank between two captures, by location or by stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..diff import DIFF_VIEWS, DiffRow
from ..errors import UsageError
from ..model import Frame, View
from ..sizes import format_size, parse_size
from ._common import open_capture
from ._report_options import add_kind_options, positive_int

SCHEMA_VERSION = 1
DEFAULT_ROWS = 20  # rows the terminal table shows without --top (the JSON has them all)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diff`` subcommand."""
    parser = subparsers.add_parser(
        "diff", help="show what grew and what shrank between two captures",
        description="Compare two captures of the same program: per allocating location (or per whole stack "
        "with --stacks), the change in bytes live at the peak, leaked, allocations made and their bytes, "
        "largest growth first. Locations match by function, file and line; a function that moved (lines "
        "added above it) still matches, and a line that moved inside its function matches the nearest one.")
    parser.add_argument("base", help="the capture to compare with (before)")
    parser.add_argument("new", help="the capture to compare (after)")
    add_kind_options(parser)
    parser.add_argument("--stacks", action="store_true", help="one row per whole stack instead of per location")
    parser.add_argument("--native", action="store_true",
                        help="keep C frames (captures recorded with --native); by default a location is the "
                        "innermost Python frame")
    parser.add_argument("--min-bytes", type=_size, default=0, metavar="SIZE",
                        help="leave out rows whose change in the bytes shown is smaller than SIZE (e.g. 64KB)")
    parser.add_argument("-n", "--top", type=positive_int, metavar="N",
                        help=f"rows to show (default: {DEFAULT_ROWS} in the table, all in the JSON)")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    parser.add_argument("--html", metavar="OUT.html",
                        help="also write the differential flame graph (as memprof flamegraph --diff does)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the --html file if it exists")
    parser.set_defaults(func=run)


def _frame_dict(frame: Frame) -> dict[str, Any]:
    return {"function": frame.function, "file": frame.file, "line": frame.line, "native": frame.native}


def row_dict(row: DiffRow, *, stacks: bool) -> dict[str, Any]:
    """One row as the JSON output has it."""
    data: dict[str, Any] = {
        "function": row.function,
        "file": row.file,
        "line": row.line,
        "native": row.location.native,
        "base_line": row.base_location.line if row.base_location is not None else None,
        "status": row.status,
        "base": row.base.as_dict(),
        "new": row.new.as_dict(),
        "change": {name: row.new.as_dict()[name] - value for name, value in row.base.as_dict().items()},
    }
    if stacks:
        data["stack"] = [_frame_dict(frame) for frame in row.stack]
    return data


def diff_dict(base, new, rows: list[DiffRow], *, view: View, stacks: bool, native: bool,
              min_bytes: int) -> dict[str, Any]:
    """Everything ``diff`` shows, as a JSON-ready dict."""

    def totals(capture) -> dict[str, Any]:
        return {"file": str(capture.path) if capture.path else None, "peak_bytes": capture.peak_bytes,
                "leaked_bytes": capture.leaked_bytes, "allocations": capture.total_allocations,
                "total_bytes": capture.total_bytes, "truncated": capture.truncated,
                "truncation": capture.truncation}

    return {
        "schema_version": SCHEMA_VERSION,
        "view": view.label,
        "stacks": stacks,
        "native": native,
        "min_bytes": min_bytes,
        "base": totals(base),
        "new": totals(new),
        "rows": [row_dict(row, stacks=stacks) for row in rows],
    }


def _signed(value: int) -> str:
    if value == 0:
        return "0"
    return ("+" if value > 0 else "") + format_size(value)


def _signed_count(value: int) -> str:
    return f"{value:+,}" if value else "0"


MAX_FRAMES = 8  # frames of a stack the table shows (the JSON has them all)


def _frame_text(frame: Frame) -> str:
    # Paths under the working folder read best relative to it.
    file = frame.file
    here = os.getcwd() + os.sep
    return f"{frame.function} at {file[len(here):] if file.startswith(here) else file}:{frame.line}"


def _location_text(row: DiffRow, stacks: bool) -> str:
    moved = ""
    if row.base_location is not None and row.base_location.line != row.line:
        moved = f" (was line {row.base_location.line})"
    if not stacks:
        return _frame_text(row.location) + moved
    frames = [_frame_text(frame) for frame in reversed(row.stack)]  # allocating frame first
    lines = [frames[0] + moved, *(f"  {text}" for text in frames[1:MAX_FRAMES])]
    if len(frames) > MAX_FRAMES:
        lines.append(f"  ... {len(frames) - MAX_FRAMES} more frame(s)")
    return "\n".join(lines)


def render(data: dict[str, Any], rows: list[DiffRow], *, view: View, stacks: bool, limit: int) -> None:
    """Print the diff as a rich table, largest growth first."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..terminal import console as terminal_console
    from ..terminal import printable

    # Rows must not be cut short in a pipe or a CI log: at least 120 columns there.
    console = terminal_console(width=None if sys.stdout.isatty() else max(120, Console().width))
    base, new = data["base"], data["new"]
    for side in (base, new):
        if side["truncated"]:
            console.print(Text(f"{side['file']} is truncated: {printable(side['truncation'])}. "
                               "Its figures cover what was decoded.", style="bold yellow"))
    console.print(
        f"Peak {format_size(base['peak_bytes'])} -> {format_size(new['peak_bytes'])} "
        f"({_signed(new['peak_bytes'] - base['peak_bytes'])})    "
        f"Leaked {format_size(base['leaked_bytes'])} -> {format_size(new['leaked_bytes'])} "
        f"({_signed(new['leaked_bytes'] - base['leaked_bytes'])})    "
        f"Allocations {base['allocations']:,} -> {new['allocations']:,} "
        f"({_signed_count(new['allocations'] - base['allocations'])})", highlight=False)
    if not rows:
        console.print("No location changed." if not data["min_bytes"] else
                      f"No location changed by {format_size(data['min_bytes'])} or more.")
        return
    table = Table(title=f"Changes in bytes {view.title}, by {'stack' if stacks else 'location'}, "
                  "largest growth first")
    table.add_column("stack (allocating frame first)" if stacks else "location", overflow="fold", ratio=1,
                     min_width=24)
    table.add_column("", no_wrap=True)
    columns = [View.PEAK, View.LEAKS, View.TOTAL] if view is not View.TEMPORARY else list(DIFF_VIEWS)
    if view not in columns:
        columns.insert(0, view)
    names = {View.PEAK: "peak", View.LEAKS: "leaked", View.TEMPORARY: "temporary", View.TOTAL: "total bytes"}
    table.add_column(f"{names[view]} before -> after", justify="right", no_wrap=True)
    for column in columns:
        table.add_column(f"\u0394 {names[column]}", justify="right", no_wrap=True)
    table.add_column("\u0394 count", justify="right", no_wrap=True)
    for row in rows[:limit]:
        style = "red" if row.change(view) > 0 else "blue" if row.change(view) < 0 else None
        table.add_row(
            _location_text(row, stacks),
            "" if row.status == "both" else row.status,
            f"{format_size(row.base.bytes_of(view))} -> {format_size(row.new.bytes_of(view))}",
            *(_signed(row.change(column)) for column in columns),
            _signed_count(row.allocations_change),
            style=style,
        )
    console.print(table)
    if len(rows) > limit:
        console.print(f"... and {len(rows) - limit} more row(s) (use --top or --json for all)")


def run(args: argparse.Namespace) -> int:
    """Compare the two captures and print the rows (and write the flame graph with --html)."""
    target = None
    if args.html:
        from ..reports.output import check_output

        target = check_output(args.html, force=args.force)
    base = open_capture(args.base, show_interpreter_frames=args.show_interpreter_frames)
    new = open_capture(args.new, show_interpreter_frames=args.show_interpreter_frames)
    view = View.of(args.kind)
    rows = base.diff(new, view=view, stacks=args.stacks, native=args.native, min_bytes=args.min_bytes)
    data = diff_dict(base, new, rows, view=view, stacks=args.stacks, native=args.native, min_bytes=args.min_bytes)
    if args.json:
        if args.top:
            data["rows"] = data["rows"][:args.top]
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(data, rows, view=view, stacks=args.stacks, limit=args.top or DEFAULT_ROWS)
    if target is not None:
        from ..reports.flamegraph import render_diff_flamegraph

        render_diff_flamegraph(base, new, target, kind=view, native=args.native)
        print(f"memprof: wrote {target}", file=sys.stderr if args.json else sys.stdout)
    return 0
