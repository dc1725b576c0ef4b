"""The ``%%memprof_flamegraph`` cell magic: run a Jupyter/IPython cell tracked and show its flame graph inline.

Load it with ``%load_ext pytest_memprof``. The page is our self-contained flame graph, put in an
iframe's ``srcdoc`` (escaped), so its script and styles cannot touch the notebook's.
"""

from __future__ import annotations

import html
import shlex
import tempfile
from pathlib import Path
from typing import Any

from . import launcher
from .capture import Capture
from .errors import MemprofError
from .model import View
from .tracker import Tracker

DEFAULT_HEIGHT = 600


def _parser():
    import argparse

    from IPython.core.error import UsageError

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # IPython shows a UsageError as one line
            raise UsageError(f"%%memprof_flamegraph: {message}")

    parser = Parser(prog="%%memprof_flamegraph", add_help=False)
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--leaks", action="store_true", help="show what the cell left allocated, not its peak")
    view.add_argument("--temporary-allocations", action="store_true", help="show allocations freed right away")
    parser.add_argument("--native", action="store_true", help="native (C/C++) frames too")
    parser.add_argument("--inverted", action="store_true", help="icicles: allocating functions at the top")
    parser.add_argument("--split-threads", action="store_true", help="one graph per thread")
    parser.add_argument("--height", type=int, default=DEFAULT_HEIGHT, help="the frame's height in pixels")
    return parser


def inline_html(page: str, height: int = DEFAULT_HEIGHT) -> str:
    """``page`` in an iframe of its own, escaped into ``srcdoc`` (in a div: IPython warns of bare iframes)."""
    return (
        f'<div class="memprof-flamegraph"><iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width: 100%; height: {int(height)}px; border: 0" sandbox="allow-scripts"></iframe></div>'
    )


def run_cell_tracked(shell: Any, cell: str, *, native: bool = False) -> tuple[Capture, Path]:
    """Run ``cell`` in the shell's namespace under a tracker; the capture, and the folder holding it."""
    from IPython.core.error import UsageError

    folder = Path(tempfile.mkdtemp(prefix="memprof-cell-"))
    path = folder / "cell.bin"
    # IPython's compiler keeps the cell's source under its file name: tracebacks and source lines see it.
    code = shell.transform_cell(cell)
    filename = shell.compile.cache(code, shell.execution_count, raw_code=cell)
    compiled = compile(code, filename, "exec")
    tracker = Tracker(path, native=native, command_line="%%memprof_flamegraph", launcher_files=launcher.NOTEBOOK)
    try:
        tracker.start()
    except MemprofError as error:
        raise UsageError(f"%%memprof_flamegraph: {error}") from None
    try:
        exec(compiled, shell.user_global_ns, shell.user_ns)
    finally:
        tracker.stop()
    return Capture.open(path), folder


def memprof_flamegraph(shell: Any, line: str, cell: str) -> Any:
    """The magic: run the cell tracked, then return the flame graph as IPython HTML."""
    import shutil

    from IPython.display import HTML

    args = _parser().parse_args(shlex.split(line))
    kind = View.LEAKS if args.leaks else View.TEMPORARY if args.temporary_allocations else View.PEAK
    capture, folder = run_cell_tracked(shell, cell, native=args.native)
    try:
        from .reports.flamegraph import render_flamegraph_html

        page = render_flamegraph_html(
            capture,
            title=f"cell [{shell.execution_count}]",
            kind=kind,
            inverted=args.inverted,
            split_threads=args.split_threads,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return HTML(inline_html(page, args.height))


def load(shell: Any) -> None:
    """Register ``%%memprof_flamegraph`` on ``shell``."""
    shell.register_magic_function(
        lambda line, cell: memprof_flamegraph(shell, line, cell), "cell", "memprof_flamegraph"
    )
