"""``memprof run``: run a script, module or code string under tracking, as ``python`` would."""

from __future__ import annotations

import io  # loaded at start-up (sys.stdout is one): imported inside _run_script, 0.4 ms of tracked time on 3.14
import os
import sys

from .. import launcher
from .._tracker import compile_file  # loaded by the tracker already; imported here, not in the program's time
from ..errors import CaptureWriteError, MemprofError, UsageError
from ..live import EXIT_MARK_ID, exit_mark_label
from ..tracker import Tracker

# Start-up is the program's wait: the modules only some runs need (argparse, traceback, glob, the
# report helpers; pathlib and runpy, 5 and 4 ms of python 3.11's start-up with what they import)
# are imported where they are needed. The same name as typing's, without typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import CodeType, SimpleNamespace, TracebackType
    from typing import Any, Union

    # What run() is given: argparse's namespace, or parse_fast()'s with the same names.
    Arguments = Union[argparse.Namespace, SimpleNamespace]

_LAUNCHER = launcher.Launcher(launcher.MEMPROF_RUN)
# types.SimpleNamespace without the types module (a quarter of a millisecond): sys.implementation is one.
_Namespace = type(sys.implementation)


class _NoProgram(MemprofError):
    """The module to run cannot be found: python says so in one line, and there is nothing to capture."""


# run's options, in the order --help shows them: (group, flags, argparse keywords). One table for
# the argparse parser and for parse_fast(), so the two cannot disagree on a flag.
_MEMRAY_GROUP = "memray's options (accepted so its command lines work)"
_LIVE_GROUP = "live view (-o keeps the capture too)"
_OPTIONS: tuple[tuple[str | None, tuple[str, ...], dict[str, Any]], ...] = (
    (None, ("-o", "--output"),
     {"metavar": "FILE", "help": "capture file to write (default: memprof-<name>.<pid>.bin in the current folder)"}),
    (None, ("-f", "--force"), {"action": "store_true", "help": "overwrite the capture file if it exists"}),
    (None, ("--native",), {"action": "store_true", "help": "also record native (C/C++) stacks"}),
    (None, ("--follow-fork",),
     {"action": "store_true", "help": "keep tracking in forked children, each writing FILE.<child pid>"}),
    (None, ("--no-python-allocators",),
     {"action": "store_true", "help": "do not hook Python's allocators: pymalloc is then seen only as its arenas, "
      "and Python calls are not followed (the cheapest mode for pure-Python code)"}),
    (None, ("--aggregate",),
     {"action": "store_true", "help": "aggregate in the process and write only per-stack totals (peak, leaks, "
      "totals, timeline): a far smaller file; no --temporal reports"}),
    (None, ("-q", "--quiet"), {"action": "store_true", "help": "do not print where the capture went"}),
    (_MEMRAY_GROUP, ("--trace-python-allocators",),
     {"action": "store_true", "help": "no effect: memprof traces Python's allocators by default "
      "(--no-python-allocators turns that off)"}),
    (_MEMRAY_GROUP, ("--no-compress",),
     {"action": "store_true", "help": "no effect, with a note: captures are compressed as they are written (LZ4 "
      "blocks, each with a checksum), so there is no separate compression step to skip"}),
    (_MEMRAY_GROUP, ("--compress-on-exit",),
     {"action": "store_true", "help": "no effect, with a note: captures are always compressed as they are written"}),
    (_LIVE_GROUP, ("--live",),
     {"action": "store_true", "help": "watch the program's memory in this terminal as it runs (q quits and stops it)"}),
    (_LIVE_GROUP, ("--live-remote",),
     {"action": "store_true", "help": "wait for `memprof live PORT` to connect, then run the program and stream "
      "to it"}),
    (_LIVE_GROUP, ("--live-port",),
     {"type": int, "metavar": "N", "help": "port for --live-remote (default: a free one)"}),
    (_LIVE_GROUP, ("--live-host",),
     {"metavar": "HOST", "help": "address for --live-remote to listen on (default 127.0.0.1)"}),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    import argparse

    parser = subparsers.add_parser(
        "run",
        help="run a Python program under tracking and write a capture file",
        description="Run a Python program (script, -m module or -c code) under tracking, exactly as "
        "`python` would run it, and write every allocation with its stack to a capture file.",
    )
    groups = {None: parser}
    for group, flags, keywords in _OPTIONS:
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        groups[group].add_argument(*flags, **keywords)
    target = parser.add_mutually_exclusive_group(required=True)
    # As with python, everything after -m MODULE or -c CODE belongs to the program (flags too).
    target.add_argument("-m", dest="module", nargs=argparse.REMAINDER,
                        help="-m MODULE [ARG ...]: run a library module as a script")
    target.add_argument("-c", dest="code", nargs=argparse.REMAINDER,
                        help="-c CODE [ARG ...]: run a program passed as a string")
    target.add_argument("script", nargs="?", metavar="script.py", help="the script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the program")
    parser.set_defaults(func=run)


def parse_fast(argv: Sequence[str]) -> SimpleNamespace | None:
    """``run``'s arguments (after the word ``run``) as argparse would parse them, or None to let argparse do it.

    argparse, with the gettext, locale and shutil it imports and the parser it builds, is a tenth
    of what ``memprof run`` adds to python's start-up. A command line made only of whole option
    names (``-o FILE``, ``--native``), then the program (``script.py``, ``-m MODULE``, ``-c CODE``
    and the program's own arguments), needs none of it; anything else (abbreviations, ``-qf``,
    ``--output=FILE``, ``--help``, ``--``, an error) goes to argparse, which says what it says.
    """
    values: dict[str, Any] = {}
    kinds: dict[str, tuple[str, Any]] = {}
    for _, flags, keywords in _OPTIONS:
        dest = keywords.get("dest") or next(flag for flag in flags if flag.startswith("--"))[2:].replace("-", "_")
        values[dest] = False if keywords.get("action") == "store_true" else None
        for flag in flags:
            kinds[flag] = (dest, True if keywords.get("action") == "store_true" else keywords.get("type", str))
    values.update(module=None, code=None, script=None, args=None)
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in ("-m", "-c"):
            rest = list(argv[index + 1:])
            if not rest:
                return None
            values["module" if word == "-m" else "code"] = rest
            values["args"] = []
            break
        if not word.startswith("-"):
            values["script"] = word
            values["args"] = list(argv[index + 1:])
            break
        kind = kinds.get(word)
        if kind is None:
            return None
        dest, convert = kind
        if convert is True:
            values[dest] = True
            index += 1
            continue
        if index + 1 == len(argv) or argv[index + 1].startswith("-"):
            return None
        try:
            values[dest] = convert(argv[index + 1])
        except ValueError:
            return None
        index += 2
    else:
        return None  # no program: argparse's error says what is required
    return _Namespace(command="run", func=run, **values)


def _default_output(args: Arguments) -> str:
    if args.module:
        name = args.module
    elif args.code is not None:
        name = "code"
    else:
        name = os.path.splitext(os.path.basename(args.script.rstrip("/")))[0]  # pathlib's stem
    return f"memprof-{name}.{os.getpid()}.bin"


def _program_argv(args: Arguments) -> list[str]:
    if args.module:
        return [args.module, *args.args]
    if args.code is not None:
        return ["-c", *args.args]
    return [args.script, *args.args]


def _split_target(args: Arguments) -> None:
    # -m/-c gather the rest of the command line: the first word is the module or code.
    for option, dest in (("-m", "module"), ("-c", "code")):
        words = getattr(args, dest)
        if words is None:
            continue
        if not words:
            raise UsageError(f"argument {option}: expected {'a module name' if dest == 'module' else 'code to run'}")
        setattr(args, dest, words[0])
        args.args = list(words[1:])


def run(args: Arguments) -> int:
    """Run the program under a Tracker and return its exit code."""
    _split_target(args)
    if args.trace_python_allocators and args.no_python_allocators:
        raise UsageError("--trace-python-allocators and --no-python-allocators contradict each other")
    for flag, given in (("--no-compress", args.no_compress), ("--compress-on-exit", args.compress_on_exit)):
        if given:
            from ._common import note_ignored

            note_ignored(flag, "captures are compressed (LZ4) as they are written; the format has no other form")
    if args.aggregate and (getattr(args, "live", False) or getattr(args, "live_remote", False)):
        raise UsageError("--aggregate cannot be combined with a live view (the viewer needs every event)")
    if args.script is not None:
        if not os.path.exists(args.script):
            raise UsageError(f"can't open file {args.script!r}: no such file")
        if os.path.isdir(args.script):
            raise UsageError(f"{args.script!r} is a folder, not a script")
    live_runner = None
    if args.live or args.live_remote or args.live_port is not None or args.live_host is not None:
        from ..live import runner as live_runner  # textual and the server only when asked for

        live_runner.check_live_options(args)
    # Live modes keep a capture only when -o asks for one.
    output = args.output if args.output else (None if live_runner else _default_output(args))
    if output is not None and os.path.exists(output) and not args.force:
        raise UsageError(f"capture file {output} already exists (use -f/--force to overwrite it)")
    if live_runner:
        from pathlib import Path  # imported by the live runner already

        output = Path(output) if output is not None else None
        if args.live:
            return live_runner.run_with_view(args, output)
    remote = live_runner.RemoteLive(args, output) if live_runner else None
    output = os.fspath(remote.output) if remote else output
    # Resolved now: a program that changes folder must not move its forked children's captures
    # (written as FILE.<pid> from the path the tracker was given) into the folder it moved to.
    resolved = os.path.abspath(output) if output is not None else None
    tracker = Tracker(
        resolved,
        native=args.native,
        trace_python_allocators=not args.no_python_allocators,
        follow_fork=args.follow_fork,
        aggregate=args.aggregate,
        overwrite=True,
        command_line=" ".join(["memprof", "run", *sys.argv[2:]]) if len(sys.argv) > 2 else "memprof run",
        launcher_files=launcher.MEMPROF_RUN,
    )
    if remote:
        remote.start()  # before tracking: waiting for a viewer is not the program's memory
    # Whether the script is a zip application or a folder runpy must run is the launcher's
    # question, asked before tracking: zipimport reading the file was charged to the program
    # (its frames come after ours), and on 3.12+ each of its functions, run first under
    # sys.monitoring, was instrumented first (0.4 ms of an empty script's start-up on 3.14).
    # The script's absolute path too: os.path's work in the program's time was charged to it.
    script = os.path.abspath(args.script) if args.script is not None else None
    folder = os.path.dirname(script) if script is not None else None
    via_runpy = script is not None and _path_importer(script) is not None
    if sys.version_info >= (3, 15) and args.script is not None:
        # The script is compiled with compile() there (_run_script), whose first call builds the ast
        # module's hundred-odd types (about 250 KB, kept for good): built now, they are not charged
        # to the program, which python's own run of it never builds.
        compile("", "<memprof>", "exec")
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = _program_argv(args)
    exit_code = 0
    written = True
    try:
        try:
            tracker.start()
        except CaptureWriteError as error:
            # A full disk is no reason not to run the program: say once that nothing is recorded.
            _remove(output)
            print(f"memprof: warning: {error} ({output}); running the program without recording", file=sys.stderr)
            written = False
            tracker = None
        try:
            exit_code = _run_program(args, script, folder, via_runpy)
            if tracker is not None:
                # The capture says how the program ended, so a live viewer learns it from the stream.
                tracker.mark(EXIT_MARK_ID, exit_mark_label(exit_code))
        finally:
            if tracker is not None:
                try:
                    tracker.stop()
                except CaptureWriteError as error:
                    # The program's exit code is the program's; the capture's problem is a warning.
                    print(f"memprof: warning: {error} ({output}); the capture holds only what was written "
                          "before that and reads as truncated", file=sys.stderr)
                    written = False
    except _NoProgram:
        _remove(output)
        raise
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
        if remote:
            remote.finish()
    if written and not args.quiet and (remote is None or args.output):
        print(
            f"memprof: wrote {output}\n"
            f"  see it with: memprof flamegraph {output}  |  memprof table {output}  |  "
            f"memprof tree {output}  |  memprof summary {output}  |  memprof stats {output}",
            file=sys.stderr,
        )
        if args.follow_fork and output is not None:
            print(_children_line(output, resolved), file=sys.stderr)
    return exit_code


def _remove(output: str | None) -> None:
    if output is not None:
        try:
            os.unlink(output)
        except FileNotFoundError:
            pass


def _children_line(output: str, resolved_path: str) -> str:
    """Where --follow-fork's children wrote their captures (FILE.<pid>, beside FILE as resolved at start)."""
    import glob
    from pathlib import Path

    output, resolved = Path(output), Path(resolved_path)

    children = sorted(path for path in resolved.parent.glob(glob.escape(resolved.name) + ".*")
                      if path.suffix[1:].isdigit())
    if not children:
        return f"memprof: no forked child wrote a capture (each would write {output}.<pid>)"
    shown = ", ".join(str(output.parent / child.name) for child in children[:5])
    more = f" and {len(children) - 5} more" if len(children) > 5 else ""
    return f"memprof: {len(children)} forked child capture(s), one per process: {shown}{more}"


def _run_program(args: Arguments, script: str | None = None, folder: str | None = None,
                 via_runpy: bool = False) -> int:
    # Mirror the interpreter: the program's folder first on sys.path, __main__ as its name,
    # SystemExit as the exit code, an uncaught exception printed and exit code 1.
    try:
        if args.module:
            sys.path[0] = os.getcwd()
            import runpy

            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        elif args.code is not None:
            sys.path[0] = ""
            exec(_compile_code(args.code), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            # Absolute, as python (3.9+) makes a script's path: its tracebacks and __file__ say so.
            script = script or os.path.abspath(args.script)
            sys.path[0] = folder if folder is not None else os.path.dirname(script)
            _run_script(script, via_runpy)
    except SystemExit as exit_:
        code = exit_.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException as error:  # the program's own error: show it as python would, keep the capture
        tb = _program_traceback(error.__traceback__)
        if tb is None and args.module and isinstance(error, ImportError):
            raise _NoProgram(str(error)) from None  # raised by runpy looking for the module
        import traceback

        traceback.print_exception(type(error), error, tb)
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    return 0


def _run_script(script: str, via_runpy: bool) -> None:
    """``runpy.run_path(script, run_name="__main__")``, without importing runpy to run a source file.

    runpy is 4 ms of python 3.11's start-up with what it imports (importlib.util, contextlib), and
    up to 3.10 it imports pkgutil, which imports typing. run_path asks the path hooks whether the
    path is an importer (a zip file, a folder) and, if none is, reads the file, compiles it unless
    it is compiled already, and runs the code as a fresh ``__main__``. The same here; an importer
    or a compiled file goes to run_path itself (``via_runpy``: the path hooks found an importer).
    """
    if via_runpy:
        _run_path(script)
        return
    with io.open_code(script) as file:
        source = file.read()
    if source[:len(_pyc_magic())] == _pyc_magic():
        _run_path(script)
        return
    if sys.version_info >= (3, 15):
        # From 3.15 runpy names the module it compiles, for the warnings compiling may give.
        code = compile(source, script, "exec", dont_inherit=True, module="__main__")
    else:
        # Not compile(), which builds the ast module's types first (a millisecond), nor with this
        # module's `from __future__ import annotations`, which is not the program's.
        code = compile_file(source, script)
    _run_as_main(code, script)


def _run_path(script: str) -> None:
    import runpy

    runpy.run_path(script, run_name="__main__")


def _pyc_magic() -> bytes:
    # importlib.util's MAGIC_NUMBER, from the import system's own module (frozen, always loaded).
    external = sys.modules.get("_frozen_importlib_external")
    magic = getattr(external, "MAGIC_NUMBER", None)
    if magic is None:
        from importlib.util import MAGIC_NUMBER as magic
    return magic


def _run_as_main(code: CodeType, script: str) -> None:
    """Run ``code`` as run_path runs a source file: in a fresh module that is ``__main__`` meanwhile,
    with ``sys.argv[0]`` the script, and the globals run_path gives it (no loader, no spec)."""
    module = type(sys)("__main__")
    module.__dict__.update(__file__=script, __loader__=None, __package__="", __spec__=None)
    if sys.version_info < (3, 15):
        module.__cached__ = None  # from 3.15 runpy sets none
    saved_main = sys.modules.get("__main__")
    saved_argv0 = sys.argv[0]
    sys.modules["__main__"] = module
    sys.argv[0] = script
    try:
        exec(code, module.__dict__)
    finally:
        sys.argv[0] = saved_argv0
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        else:
            sys.modules.pop("__main__", None)


def _compile_code(code: str) -> CodeType:
    """``-c CODE`` compiled as ``python -c`` compiles it (see ``_tracker.compile_file``)."""
    try:
        source = code.encode()
    except UnicodeEncodeError:  # undecodable bytes of the command line, kept as surrogates
        source = None
    if source is None:
        # dont_inherit: this module's `from __future__ import annotations` is not the program's.
        return compile(code, "<string>", "exec", dont_inherit=True)
    return compile_file(source, "<string>", decoded=True)


def _path_importer(path: str) -> object | None:
    """What ``pkgutil.get_importer(path)`` returns (None for a plain file), without importing pkgutil."""
    if path in sys.path_importer_cache:
        return sys.path_importer_cache[path]
    for hook in sys.path_hooks:
        try:
            importer = hook(path)
        except ImportError:
            continue
        sys.path_importer_cache.setdefault(path, importer)
        return importer
    return None


def _program_traceback(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from the program's first frame: our frames and runpy's are not the program's."""
    # A Cython function's frame names its .pyx relative to the package's parent (compile_file's,
    # when the program's source does not compile): ours as well.
    while tb is not None and (_LAUNCHER.is_launcher_file(tb.tb_frame.f_code.co_filename)
                              or tb.tb_frame.f_code.co_filename.startswith("pytest_memprof/")):
        tb = tb.tb_next
    return tb
