"""Options the report subcommands share: which bytes to show, where the HTML goes, counts."""

from __future__ import annotations

import argparse

from ..model import View


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """``--show-interpreter-frames``: with native stacks, which C frames a report shows."""
    parser.add_argument("--show-interpreter-frames", action="store_true",
                        help="with native stacks, keep the Python interpreter's own C frames (hidden by default)")


class _TemporaryThreshold(argparse.Action):
    """``--temporary-allocation-threshold N``: the temporary view, with memray's threshold N."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        namespace.kind = View.TEMPORARY
        namespace.temporary_threshold = values


def add_kind_options(parser: argparse.ArgumentParser) -> None:
    """``--leaks`` / ``--temporary-allocations`` / ``--temporary-allocation-threshold N`` (the peak by
    default), and ``--show-interpreter-frames``."""
    add_stack_arguments(parser)
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--leaks", dest="kind", action="store_const", const=View.LEAKS,
                      help="show memory still allocated at the end instead of at the peak")
    # memray's meanings: N other allocations may come between a temporary allocation and its free,
    # and --temporary-allocations is N = 1.
    view.add_argument("--temporary-allocation-threshold", type=non_negative_int, metavar="N",
                      action=_TemporaryThreshold,
                      help="show temporary allocations: those freed by the thread that made them after at most "
                      "N of its other allocations (0: before any other), as memray counts them")
    view.add_argument("--temporary-allocations", dest="kind", action="store_const", const=View.TEMPORARY,
                      help="show temporary allocations with threshold 1 (as memray does; "
                      "--temporary-allocation-threshold 0 is the strict kind)")
    parser.set_defaults(kind=View.PEAK, temporary_threshold=1)


def add_output_options(parser: argparse.ArgumentParser, kind: str) -> None:
    """``-o/--output`` and ``-f/--force`` for a report written as ``memprof-<kind>-<name>.html``."""
    parser.add_argument("-o", "--output", metavar="OUT.html",
                        help=f"where to write it (default: memprof-{kind}-<name>.html next to the capture)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite the output file if it exists")


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def add_memray_page_options(parser: argparse.ArgumentParser) -> None:
    """memray's options of its HTML reports: ``--confidential-files`` and ``--no-web`` (accepted, a no-op)."""
    parser.add_argument("--confidential-files", choices=("all", "none", "default"), default="default",
                        help="which files' source lines the page may show beside their frames: all files are "
                        "confidential (no source lines), none are, or by default all but those that are "
                        "neither .py files, nor executable, nor world-readable (memray's rule)")
    parser.add_argument("--no-web", action="store_true",
                        help="accepted for memray's sake; no effect: memprof's pages never load anything")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value
