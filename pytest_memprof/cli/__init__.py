"""The ``memprof`` command: a dispatcher over one module per subcommand."""

from __future__ import annotations

import sys

from ..errors import MemprofError

# typing.TYPE_CHECKING without typing, which `memprof run` does not otherwise import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Each module defines register(subparsers), which adds its parser and sets func=callable(args) -> int.
# Registering imports every module, so a report's libraries (jinja2, rich) are imported only when it runs:
# each is tens of milliseconds of start-up that every other command would pay.
SUBCOMMANDS = ("run", "attach", "stats", "parse", "system", "flamegraph", "table", "tree", "summary", "diff",
               "transform", "live")
# The commands registered by a module of another name.
MODULE_OF = {"sys": "system", "detach": "attach"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser with ``command`` registered, or every subcommand when None."""
    import argparse
    import importlib

    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="memprof",
        description="Memory profiler for Python and native code: run a program under tracking, "
        "then report on its capture file.",
    )
    parser.add_argument("--version", action="version", version=f"memprof {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS if command is None else (command,):
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``memprof`` with ``argv`` and return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the subcommand asked for is imported: `memprof run` starts as fast as python itself
    # would (the report commands' modules import the capture reader, sysstats, rich).
    args = None
    if argv and argv[0] == "run":
        from . import run

        args = run.parse_fast(argv[1:])  # the program waits for this: no argparse when it is not needed
    if args is None:
        first = next((arg for arg in argv if not arg.startswith("-")), None)
        module = MODULE_OF.get(first, first)
        # `memprof sys -w` imported every command's module (the capture reader among them): 3 MiB
        # more of a server's resident memory.
        parser = build_parser(module if module in SUBCOMMANDS and first == argv[0] else None)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
    if args.command != "run":
        # Warnings from report code (e.g. a library gone since the capture) are for the user: one line
        # each. A program's own warnings, under `memprof run`, print as python prints them.
        import warnings

        warnings.showwarning = lambda message, *_: print(f"memprof: warning: {message}", file=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except MemprofError as error:
        print(f"memprof: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("memprof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `memprof parse big.bin | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
