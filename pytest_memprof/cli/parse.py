"""``memprof parse``: print every record of a capture, one per line (a debugging aid)."""

from __future__ import annotations

import argparse
import sys

from .._reader import dump
from ..truncation import truncation_text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``parse`` subcommand."""
    parser = subparsers.add_parser("parse", help="print the decoded records of a capture file",
                                   description="Print the header and every record of a capture file, "
                                   "one decoded record per line.")
    parser.add_argument("file", help="capture file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dump the capture; exit 1 if it is corrupt or truncated (after printing what was read)."""
    sys.stdout.flush()
    reader = dump(args.file, sys.stdout.fileno())
    if reader.error:
        print(f"memprof: {args.file}: {reader.error}", file=sys.stderr)
        return 1
    if reader.truncated:
        print(f"memprof: {args.file} is truncated: {truncation_text(reader)}", file=sys.stderr)
        return 1
    return 0
