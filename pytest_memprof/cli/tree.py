"""``memprof tree``: print the biggest stacks at the peak as a tree."""

from __future__ import annotations

import argparse

from ._common import open_capture
from ._report_options import add_kind_options, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tree`` subcommand."""
    parser = subparsers.add_parser(
        "tree", help="print the peak as a tree in the terminal",
        description="Print the biggest stacks of the memory live at the peak (or leaked, or temporary) as a "
        "tree, largest branches first; branches under 1% of the total are folded.")
    parser.add_argument("file", help="capture file")
    parser.add_argument("-b", "--biggest-allocs", type=positive_int, default=10, metavar="N",
                        help="how many of the biggest stacks to show (default 10)")
    add_kind_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the tree."""
    capture = open_capture(args.file, show_interpreter_frames=args.show_interpreter_frames,
                           temporary_threshold=args.temporary_threshold, kind=args.kind,
                           meanwhile=("pytest_memprof.reports.tree",))
    # Imported here, as every report command does (cli/__init__.py says why), and while the
    # capture is read (open_capture).
    from ..reports.tree import print_tree

    print_tree(capture, kind=args.kind, biggest_allocs=args.biggest_allocs)
    return 0
