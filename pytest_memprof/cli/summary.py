"""``memprof summary``: print a table by function of the memory at the peak."""

from __future__ import annotations

import argparse

from ._common import open_capture
from ._report_options import add_kind_options, positive_int

# The same names as reports.summary.SORT_COLUMNS (a test checks), without importing rich at start-up.
SORT_COLUMNS = ("total-bytes", "own-bytes", "total-count", "own-count", "function")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``summary`` subcommand."""
    parser = subparsers.add_parser(
        "summary", help="print a table by function of the memory at the peak",
        description="Print, by function, the bytes and allocations live at the peak (or leaked, or "
        "temporary): total (the function or anything it called) and own (allocated in it).")
    parser.add_argument("file", help="capture file")
    parser.add_argument("--sort-column", choices=SORT_COLUMNS, default="total-bytes", metavar="COL",
                        help=f"column to sort by: {', '.join(SORT_COLUMNS)} (default total-bytes)")
    parser.add_argument("--max-rows", type=positive_int, default=20, metavar="N",
                        help="rows to show (default 20)")
    add_kind_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary."""
    from ..reports.summary import print_summary

    print_summary(open_capture(args.file, show_interpreter_frames=args.show_interpreter_frames),
                  kind=args.kind, sort_column=args.sort_column, max_rows=args.max_rows)
    return 0
