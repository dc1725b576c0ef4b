"""``memprof summary``: print a table by function of the memory at the peak."""

from __future__ import annotations

import argparse

from ._common import open_capture
from ._report_options import add_kind_options, positive_int

# The same names as reports.summary.SORT_COLUMNS (a test checks), without importing rich at start-up.
SORT_COLUMNS = ("total-bytes", "own-bytes", "total-count", "own-count", "function")
# memray's -s takes its summary's column numbers: 1 and 2 total memory (and its %), 3 and 4 own
# memory (and its %), 5 allocations (counted in every function of the stack, our total-count). We
# add 0 for the function and 6 for own allocations, which memray's table has no column for.
COLUMN_NUMBERS = {0: "function", 1: "total-bytes", 2: "total-bytes", 3: "own-bytes", 4: "own-bytes",
                  5: "total-count", 6: "own-count"}


def sort_column(text: str) -> str:
    """An argparse type: a column name, or memray's column number."""
    if text in SORT_COLUMNS:
        return text
    try:
        return COLUMN_NUMBERS[int(text)]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(SORT_COLUMNS)} or a column number 0 to 6, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``summary`` subcommand."""
    parser = subparsers.add_parser(
        "summary", help="print a table by function of the memory at the peak",
        description="Print, by function, the bytes and allocations live at the peak (or leaked, or "
        "temporary): total (the function or anything it called) and own (allocated in it).")
    parser.add_argument("file", help="capture file")
    parser.add_argument("-s", "--sort-column", type=sort_column, default="total-bytes", metavar="COL",
                        help=f"column to sort by: {', '.join(SORT_COLUMNS)}, or its number as memray counts "
                        "them (1 or 2 total-bytes, 3 or 4 own-bytes, 5 total-count; 0 function, 6 own-count); "
                        "default total-bytes")
    parser.add_argument("-r", "--max-rows", type=positive_int, default=20, metavar="N",
                        help="rows to show (default 20)")
    add_kind_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary."""
    capture = open_capture(args.file, show_interpreter_frames=args.show_interpreter_frames,
                           temporary_threshold=args.temporary_threshold, kind=args.kind,
                           meanwhile=("pytest_memprof.reports.summary",))
    from ..reports.summary import print_summary  # imported while the capture is read (open_capture)

    print_summary(capture, kind=args.kind, sort_column=args.sort_column, max_rows=args.max_rows)
    return 0
