"""``memprof stats``: totals, allocators, size histogram and top locations of a capture."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any

from ..capture import Capture
from ..errors import UsageError
from ..model import View
from ..sizes import format_size
from ..truncation import NONE_DECODED
from ._common import open_capture
from ._report_options import add_stack_arguments, positive_int

SCHEMA_VERSION = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``stats`` subcommand."""
    parser = subparsers.add_parser("stats", help="show statistics of a capture file",
                                   description="Show the peak, leaks, totals, allocations by allocator, "
                                   "an allocation-size histogram and the top locations of a capture.")
    parser.add_argument("file", help="capture file")
    parser.add_argument("--json", action="store_true",
                        help="print the statistics as one JSON object (to a file with -o)")
    parser.add_argument("-o", "--output", metavar="FILE.json", help="with --json: write the JSON to FILE")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the -o file if it exists")
    parser.add_argument("-n", "--num-largest", "--top", dest="top", type=positive_int, default=5, metavar="N",
                        help="locations to list (default 5)")
    add_stack_arguments(parser)
    parser.set_defaults(func=run)


def _top_locations(capture: Capture, top: int) -> dict[str, list[dict[str, Any]]]:
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for frame, size, count in capture.location_totals(View.TOTAL):
        key = (frame.function, frame.file, frame.line) if frame else ("<unknown>", "<unknown>", 0)
        totals[key][0] += size
        totals[key][1] += count
    rows = [{"function": f, "file": p, "line": n, "bytes": b, "count": c} for (f, p, n), (b, c) in totals.items()]
    return {
        "top_by_bytes": sorted(rows, key=lambda row: (-row["bytes"], -row["count"]))[:top],
        "top_by_count": sorted(rows, key=lambda row: (-row["count"], -row["bytes"]))[:top],
    }


def stats_dict(capture: Capture, top: int = 5) -> dict[str, Any]:
    """Every figure ``stats`` shows, as a JSON-ready dict (the terminal view renders this too)."""
    meta = capture.metadata
    return {
        "schema_version": SCHEMA_VERSION,
        "file": str(capture.path) if capture.path else None,
        "command_line": meta.command_line,
        "pid": meta.pid,
        "python_version": meta.python_version,
        "peak_bytes": capture.peak_bytes,
        "leaked_bytes": capture.leaked_bytes,
        "total_allocations": capture.total_allocations,
        "total_bytes": capture.total_bytes,
        "duration_s": capture.duration,
        "truncated": capture.truncated,
        "truncation": capture.truncation,
        "undecoded_bytes": capture.undecoded_bytes,
        "records_lost_at_end": capture.records_lost_at_end,
        "damaged": {"lost_events": capture.lost_events, "problem": capture.problem} if capture.damaged else None,
        "allocators": {name: {"count": count, "bytes": size}
                       for name, (count, size) in sorted(capture.allocator_totals().items())},
        "size_histogram": [{"upper_bound": bound, "count": count} for bound, count in capture.size_histogram()],
        **_top_locations(capture, top),
    }


def render(data: dict[str, Any]) -> None:
    """Print the stats dict as rich tables."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from ..terminal import console as terminal_console
    from ..terminal import printable

    console = terminal_console()
    if data["damaged"]:
        console.print("[bold red]This capture is damaged: figures leave out the events of its damaged blocks.[/]")
    elif data["truncated"]:
        console.print(Text(f"This capture is truncated: {printable(data['truncation'])}. "
                           "The figures cover what was decoded.", style="bold yellow"))
    command = escape(printable(data["command_line"]))
    console.print(f"[bold]Command:[/] {command}  (pid {data['pid']}, Python {data['python_version']})",
                  markup=True, highlight=False)
    console.print(f"Duration: {data['duration_s']:.3f} s    Peak: {format_size(data['peak_bytes'])}    "
                  f"Leaked at end: {format_size(data['leaked_bytes'])}    "
                  f"Allocations: {data['total_allocations']:,} ({format_size(data['total_bytes'])})")
    if not data["total_allocations"]:
        console.print(NONE_DECODED if data["records_lost_at_end"] else "No allocations were recorded.")
        return
    allocators = Table(title="Allocations by allocator")
    allocators.add_column("allocator")
    allocators.add_column("count", justify="right")
    allocators.add_column("bytes", justify="right")
    for name, row in sorted(data["allocators"].items(), key=lambda item: -item[1]["bytes"]):
        allocators.add_row(name, f"{row['count']:,}", format_size(row["bytes"]))
    console.print(allocators)
    if data["size_histogram"]:  # an aggregated capture cut before its summary has none
        histogram = Table(title="Allocation sizes")
        histogram.add_column("size below", justify="right")
        histogram.add_column("count", justify="right")
        histogram.add_column("", min_width=30)
        most = max(row["count"] for row in data["size_histogram"])
        for row in data["size_histogram"]:
            bar = "█" * max(1, round(30 * row["count"] / most))
            histogram.add_row(format_size(row["upper_bound"]), f"{row['count']:,}", bar)
        console.print(histogram)
    for key, title in (("top_by_bytes", "Top locations by bytes"), ("top_by_count", "Top locations by count")):
        table = Table(title=title)
        table.add_column("location", overflow="fold")
        table.add_column("bytes", justify="right")
        table.add_column("count", justify="right")
        for row in data[key]:
            table.add_row(printable(f"{row['function']} at {row['file']}:{row['line']}"), format_size(row["bytes"]),
                          f"{row['count']:,}")
        console.print(table)


def run(args: argparse.Namespace) -> int:
    """Print the stats of a capture; exit 1 if it is damaged (after printing what could be read)."""
    target = None
    if args.output:
        if not args.json:
            raise UsageError("-o/--output writes the JSON of --json: add --json")
        from ..reports.output import check_output

        target = check_output(args.output, force=args.force)
    shown = () if args.json else ("rich.console", "rich.markup", "rich.table", "rich.text")
    capture = open_capture(args.file, show_interpreter_frames=args.show_interpreter_frames,
                           meanwhile=shown)
    data = stats_dict(capture, args.top)
    if target is not None:
        from ..reports.output import write_report

        write_report(target, json.dumps(data, indent=2) + "\n")
        print(f"memprof: wrote {target}")
    elif args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(data)
    return 1 if capture.damaged else 0
