"""Helpers shared by the report subcommands: opening a capture with a progress bar, notes on flags."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import View

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence

    from ..capture import Capture

# A read that ends sooner shows no bar (it would only flicker); a longer one shows it from then
# on. File size cannot tell in advance: a megabyte may hold 50,000 events or 5 million.
# MEMPROF_PROGRESS_DELAY (seconds) overrides it; the tests set 0.
PROGRESS_DELAY_S = 0.5


def progress_wanted() -> bool:
    """Whether to show the bar: on a terminal's stderr, or wherever MEMPROF_PROGRESS=always says
    (never: not even on a terminal); a pipe or a CI log gets none unless asked."""
    wanted = os.environ.get("MEMPROF_PROGRESS", "auto")
    return wanted == "always" or (wanted != "never" and sys.stderr.isatty())


class _DelayedProgress:
    """A transient rich progress bar that appears only once a read has taken PROGRESS_DELAY_S."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._delay = float(os.environ.get("MEMPROF_PROGRESS_DELAY", PROGRESS_DELAY_S))
        self._started = time.monotonic()
        self._progress = None
        self._task = None

    def update(self, done: int, total: int) -> None:
        if self._progress is None:
            if time.monotonic() - self._started < self._delay:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            # On stderr: stdout is the report (tree, summary) and may be piped to a file.
            # Shown on a terminal, or where MEMPROF_PROGRESS=always asks for it even without one.
            console = Console(stderr=True, force_terminal=True)
            self._progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                      TimeRemainingColumn(), transient=True, console=console)
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=total)
            self._progress.update(self._task, completed=done, refresh=True)  # drawn now, not at the next tick
            return
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


# What hashlib falls back to without OpenSSL, by Python version (hashlib.py's __get_builtin_constructor).
_BUILTIN_HASHES = ("_md5", "_sha1", "_sha2", "_sha3", "_blake2") if sys.version_info >= (3, 12) else (
    "_md5", "_sha1", "_sha256", "_sha512", "_sha3", "_blake2")


def skip_openssl_hashes() -> bool:
    """Have hashlib, if nothing imported it yet, use Python's own hash modules in this process.

    Jinja2 imports hashlib for a bytecode cache the reports do not use, and hashlib's OpenSSL
    backend maps libcrypto: about 3.5 MiB of resident memory, a sixth of a report's peak. A report
    command runs no user code and hashes nothing. Python's own modules must all be there (some
    builds leave them out, and hashlib logs an error for each one missing); True if skipped.
    """
    if "hashlib" in sys.modules or "_hashlib" in sys.modules:
        return False
    from importlib.util import find_spec

    if any(find_spec(name) is None for name in _BUILTIN_HASHES):
        return False
    sys.modules["_hashlib"] = None  # type: ignore[assignment]  # an import of it raises ImportError
    return True


def open_capture(path: str, *, temporal: bool = False, show_interpreter_frames: bool = False,
                 temporary_threshold: int = 1, kind: View = View.PEAK, meanwhile: Sequence[str] = ()) -> Capture:
    """Open a capture, showing a rich progress bar on a terminal when reading it takes a while; the
    modules named in ``meanwhile`` (what the report needs next) are imported while it is read.

    A damaged capture (blocks that fail their checksum) opens with one warning on stderr.
    """
    skip_openssl_hashes()
    file = Path(path)
    options = {"temporal": temporal, "show_interpreter_frames": show_interpreter_frames,
               "temporary_threshold": temporary_threshold}
    from ..capture import Capture  # not at import: `memprof run` uses this module and reads no capture

    importer = _import_meanwhile(meanwhile)
    try:
        if not progress_wanted():
            capture = Capture.open(file, **options)
        else:
            bar = _DelayedProgress(f"reading {file.name}")
            try:
                capture = Capture.open(file, progress=bar.update, **options)
            finally:
                bar.close()
    finally:
        if importer is not None:
            importer.join()
    if capture.damaged:
        # A damaged file is not a file cut short: say so, once, whatever the report.
        print(f"memprof: warning: {file}: {capture.problem}", file=sys.stderr)
    if kind is View.TEMPORARY and capture.metadata.aggregated and temporary_threshold != 0:
        # The process counted them as it ran (aggregate.py), with threshold 0: say so rather than mislead.
        print(f"memprof: note: {path} is aggregated: its temporary allocations were counted with threshold 0 "
              "when it was recorded; another threshold needs a capture made without --aggregate", file=sys.stderr)
    return capture


def _import_meanwhile(modules: Sequence[str]) -> threading.Thread | None:
    # The reader replays a capture in C++ without the GIL, leaving the second core idle: a report's
    # next imports (rich's tables are 20 ms of a 250 ms `memprof stats`) take no time there. Joined
    # once the capture is read, so no thread outlives the open. An import that fails here fails
    # again where the report makes it, and says why there.
    if not modules:
        return None
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the report imports it again, and says why it fails
                pass

    importer = threading.Thread(target=load, name="memprof-imports", daemon=True)
    importer.start()
    return importer


def truncation_note(name: str, capture: Capture, what: str) -> str:
    """The line a report command prints for a truncated capture: what it lost, and that ``what`` covers the rest."""
    return f"memprof: {name} is truncated: {capture.truncation}; {what} covers what was decoded"


def note_ignored(flag: str, why: str) -> None:
    """Say on stderr that a flag memray has is accepted but does nothing here."""
    print(f"memprof: note: {flag} has no effect: {why}", file=sys.stderr)
