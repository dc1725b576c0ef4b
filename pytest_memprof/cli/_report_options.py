"""Options the report subcommands share: which bytes to show, where the HTML goes, counts."""

from __future__ import annotations

import argparse

from ..model import View


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """``--show-interpreter-frames``: with native stacks, which C frames a report shows."""
    parser.add_argument("--show-interpreter-frames", action="store_true",
                        help="with native stacks, keep the Python interpreter's own C frames (hidden by default)")


def add_kind_options(parser: argparse.ArgumentParser) -> None:
    """``--leaks`` / ``--temporary-allocations`` (the peak by default), and ``--show-interpreter-frames``."""
    add_stack_arguments(parser)
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--leaks", dest="kind", action="store_const", const=View.LEAKS,
                      help="show memory still allocated at the end instead of at the peak")
    view.add_argument("--temporary-allocations", dest="kind", action="store_const", const=View.TEMPORARY,
                      help="show allocations freed before any other allocation was made")
    parser.set_defaults(kind=View.PEAK)


def add_output_options(parser: argparse.ArgumentParser, kind: str) -> None:
    """``-o/--output`` and ``-f/--force`` for a report written as ``memprof-<kind>-<name>.html``."""
    parser.add_argument("-o", "--output", metavar="OUT.html",
                        help=f"where to write it (default: memprof-{kind}-<name>.html next to the capture)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the output file if it exists")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value
