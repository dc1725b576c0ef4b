"""``memprof table``: write a capture's allocations as a sortable, filterable HTML table."""

from __future__ import annotations

import argparse

from ..reports.output import check_output, default_output
from ._common import note_ignored, open_capture, truncation_note
from ._report_options import add_kind_options, add_memray_page_options, add_output_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``table`` subcommand."""
    parser = subparsers.add_parser(
        "table", help="write an HTML table of the allocations at the peak",
        description="Write a self-contained HTML table of the memory live at the peak (or leaked, or in "
        "temporary allocations) by stack: location, thread, bytes, count and allocator. Threads are "
        "merged unless --split-threads.")
    parser.add_argument("file", help="capture file")
    add_output_options(parser, "table")
    add_kind_options(parser)
    parser.add_argument("--split-threads", action="store_true",
                        help="one row per stack and thread (threads are merged by default, as memray does)")
    add_memray_page_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the table and say where it went."""
    # Imported here, as every report command does (cli/__init__.py says why).
    from ..reports.table import render_table

    if args.no_web:
        note_ignored("--no-web", "memprof's pages always carry their own script and style")
    target = check_output(args.output or default_output(args.file, "table"), force=args.force)
    capture = open_capture(args.file, show_interpreter_frames=args.show_interpreter_frames,
                           temporary_threshold=args.temporary_threshold, kind=args.kind,
                           meanwhile=("jinja2",))
    render_table(capture, target, kind=args.kind, split_threads=args.split_threads,
                 confidential_files=args.confidential_files)
    if capture.truncated:
        print(truncation_note(args.file, capture, "the table"))
    print(f"memprof: wrote {target}")
    return 0
