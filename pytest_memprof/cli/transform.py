"""``memprof transform``: write a capture's stacks in another tool's format."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ..reports.output import check_output, default_output
from ._common import open_capture, truncation_note
from ._report_options import add_kind_options

# The same as reports.transform.FORMATS (a test checks), without importing the reports at start-up.
FORMATS = {"csv": "csv", "gprof2dot": "json", "speedscope": "json", "pprof": "pb.gz"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``transform`` subcommand."""
    parser = subparsers.add_parser(
        "transform",
        help="write a capture in another tool's format (csv, gprof2dot, speedscope, pprof)",
        description="Write the stacks of the memory live at the peak (or leaked, or in temporary "
        "allocations) in another tool's format: csv (one row per allocation site), gprof2dot (its JSON "
        "input, `gprof2dot -f json`), speedscope (its file format, with peak and leak profiles) or pprof "
        "(a gzipped profile.proto for `go tool pprof` and Pyroscope). See docs/transform.md.",
    )
    parser.add_argument("format", choices=tuple(FORMATS), metavar="FORMAT", help=f"one of {', '.join(FORMATS)}")
    parser.add_argument("file", help="capture file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="where to write it (default: memprof-FORMAT-<name>.<csv|json|pb.gz> next to the capture)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the output file if it exists")
    parser.add_argument(
        "--native",
        action="store_true",
        help="keep the C frames of a capture recorded with native stacks (Python frames only by default)",
    )
    add_kind_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the transformed capture and say where it went."""
    # Imported here, as every report command does (cli/__init__.py says why).
    from ..reports.transform import transform

    target = check_output(args.output or default_output(args.file, args.format, FORMATS[args.format]), force=args.force)
    capture = open_capture(
        args.file,
        show_interpreter_frames=args.show_interpreter_frames,
        temporary_threshold=args.temporary_threshold,
        kind=args.kind,
    )
    if args.native and not capture.metadata.native:
        raise UsageError(
            f"{args.file} was recorded without native stacks; record it with `memprof run --native` to use --native"
        )
    transform(capture, args.format, target, kind=args.kind, native=args.native)
    if capture.truncated:
        print(truncation_note(args.file, capture, "the output"))
    print(f"memprof: wrote {target}")
    return 0
