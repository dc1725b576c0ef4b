"""``memprof flamegraph``: write a capture's HTML flame graph."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ..reports.output import check_output, default_output
from ._common import note_ignored, open_capture, truncation_note
from ._report_options import add_kind_options, add_memray_page_options, add_output_options, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``flamegraph`` subcommand."""
    parser = subparsers.add_parser(
        "flamegraph", help="write an HTML flame graph of a capture",
        description="Write a self-contained HTML flame graph of a capture: frames sized by the bytes "
        "allocated at the peak (or leaked, or in temporary allocations), with a heap-over-time chart.")
    parser.add_argument("file", help="capture file (with --diff, the new capture)")
    parser.add_argument("--diff", metavar="BASE.bin",
                        help="a differential flame graph: frames sized by FILE, coloured red where they grew and "
                        "blue where they shrank against BASE.bin (memprof flamegraph --diff BASE.bin NEW.bin)")
    parser.add_argument("--native", action="store_true",
                        help="with --diff: keep C frames (captures recorded with --native); by default only "
                        "Python frames are compared")
    add_output_options(parser, "flamegraph")
    add_kind_options(parser)
    parser.add_argument("--split-threads", action="store_true", help="start with one branch per thread")
    parser.add_argument("--inverted", action="store_true",
                        help="start inverted: allocating functions at the top, their callers below")
    parser.add_argument("--temporal", action="store_true",
                        help="let a drag on the heap chart show what was allocated in a time range and "
                        "still live at its end")
    parser.add_argument("--max-memory-records", type=positive_int, default=None, metavar="N",
                        help="at most N points on the heap-over-time chart (default 2000; the highest heap of "
                        "each stretch is kept)")
    add_memray_page_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the flame graph and say where it went."""
    # Imported here, as every report command does (cli/__init__.py says why).
    from ..reports.flamegraph import render_flamegraph

    if args.no_web:
        note_ignored("--no-web", "memprof's pages always carry their own script and style")
    if args.diff:
        return _run_diff(args)
    target = check_output(args.output or default_output(args.file, "flamegraph"), force=args.force)
    capture = open_capture(args.file, temporal=args.temporal, show_interpreter_frames=args.show_interpreter_frames,
                           temporary_threshold=args.temporary_threshold, kind=args.kind,
                           meanwhile=("jinja2",))
    render_flamegraph(capture, target, kind=args.kind, temporal=args.temporal, inverted=args.inverted,
                      split_threads=args.split_threads, max_memory_records=args.max_memory_records,
                      confidential_files=args.confidential_files)
    if capture.truncated:
        print(truncation_note(args.file, capture, "the flame graph"))
    print(f"memprof: wrote {target}")
    return 0


def _run_diff(args: argparse.Namespace) -> int:
    from ..reports.flamegraph import render_diff_flamegraph

    for flag, given in (("--temporal", args.temporal), ("--split-threads", args.split_threads)):
        if given:
            raise UsageError(f"{flag} does not apply to a differential flame graph (--diff)")
    target = check_output(args.output or default_output(args.file, "flamegraph-diff"), force=args.force)
    base = open_capture(args.diff, show_interpreter_frames=args.show_interpreter_frames)
    new = open_capture(args.file, show_interpreter_frames=args.show_interpreter_frames)
    render_diff_flamegraph(base, new, target, kind=args.kind, inverted=args.inverted, native=args.native)
    for name, capture in ((args.diff, base), (args.file, new)):
        if capture.truncated:
            print(truncation_note(name, capture, "the flame graph"))
    print(f"memprof: wrote {target}")
    return 0
