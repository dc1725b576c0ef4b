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
# Commands that read a capture, write their report and are done: their process ends without the
# interpreter's teardown (see console_main). Never `run`: the program's threads and exit handlers
# are its own business.
ONE_SHOT = frozenset({"stats", "parse", "flamegraph", "table", "tree", "summary", "diff", "transform"})


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
        code = int(args.func(args) or 0)
        if args.command != "run" and sys.stdout is not None:
            # A report's last lines are often still buffered: writing them can fail too, and should
            # fail here, in these handlers, not in the interpreter's last flush (exit 120 and an
            # "Exception ignored" dump). A program's output under `run` is the program's business.
            sys.stdout.flush()
        return code
    except MemprofError as error:
        print(f"memprof: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("memprof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `memprof parse big.bin | head`: the reader went away; that is not an error.
        _discard_unwritten_output()
        sys.stderr.close()
        return 0
    except OSError as error:
        # `memprof stats x.bin > out.txt` on a full disk: a failure to report, said in one line.
        if not _output_full(error):
            raise
        _discard_unwritten_output()
        print(f"memprof: error: cannot write the output: {error.strerror}", file=sys.stderr)
        return 1


def _output_full(error: OSError) -> bool:
    # A write error that means the output is full (a disk, a quota, a file size limit): a report's
    # failure, not memprof's bug. errno is imported here: `memprof run` never needs it.
    import errno

    return error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _discard_unwritten_output() -> None:
    # What stdout could not write is still buffered: it goes to /dev/null (Python's own advice for
    # SIGPIPE), else the interpreter's last flush fails again and exits 120 (3.14 does on a closed
    # pipe). Only when stdout is the stream that failed: an output file's error keeps stdout's lines.
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
        return
    except (OSError, ValueError):
        pass
    try:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def console_main() -> None:
    """The ``memprof`` console script (and ``python -m pytest_memprof``): ``main``, then exit."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in ONE_SHOT:
        _exit_without_teardown(code)
    sys.exit(code)


def _exit_without_teardown(code: int) -> None:
    # A report leaves its capture's tables behind: tens of thousands of objects, many in cycles
    # (calls that expand through their capture's symbols). Clearing the modules and a last
    # collection took 25 ms of a 260 ms `memprof stats` on a --native capture, for memory the
    # kernel takes back anyway. With the exit handlers run (the symbol cache is saved by one) and
    # the output flushed, nothing of the report is left to do, so the process ends there, as mypy's
    # does. Anything unusual (another thread still running, a flush that fails) exits the usual way.
    import atexit
    import os
    import threading

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None or threading.active_count() > 1 or _watched():
        return
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: let the interpreter report it as usual
        return
    os._exit(code)


def _watched() -> bool:
    # A profiler or tracer (python -m cProfile -m pytest_memprof ..., a debugger) writes what it saw
    # once the code it runs returns: the process must live to that point.
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # 3.12+: cProfile and coverage are tools there
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


if __name__ == "__main__":  # pragma: no cover
    console_main()
