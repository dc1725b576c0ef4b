"""Where a report goes: the default name next to the capture, no silent overwrite, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MemprofError


class ReportError(MemprofError):
    """A report cannot be written (the file exists, or its folder cannot be created or written)."""


def default_output(capture_path: str | os.PathLike[str], kind: str, suffix: str = "html") -> Path:
    """``memprof-<kind>-<capture name>.<suffix>`` (``.html`` by default) in the capture's folder."""
    capture_path = Path(capture_path)
    return capture_path.with_name(f"memprof-{kind}-{capture_path.stem}.{suffix}")


def check_output(target: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Make sure ``target`` can be written (creating its folder); raise ReportError with one line if not.

    Called before the capture is read, so a long read is not wasted on a report that cannot be saved.
    """
    target = Path(target)
    if target.is_dir():
        raise ReportError(f"{target} is a folder; give a file name for the report")
    if target.exists() and not force:
        raise ReportError(f"{target} already exists (use -f/--force to overwrite it)")
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"cannot create the folder {folder} for the report: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ReportError(f"cannot write the report in {folder}: permission denied")
    return target


def write_report(target: str | os.PathLike[str], text: str | bytes) -> Path:
    """Write ``text`` (or bytes) to ``target`` through a temporary file, so a reader never sees half a report."""
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A path from the capture may hold undecodable bytes (lone surrogates): show them as "?"
        # rather than fail the whole report.
        if isinstance(text, bytes):
            partial.write_bytes(text)
        else:
            partial.write_text(text, encoding="utf-8", errors="replace")
        os.replace(partial, target)
    except OSError as error:
        try:
            partial.unlink(missing_ok=True)
        except OSError:  # the folder itself is the problem; the message below says so
            pass
        raise ReportError(f"cannot write {target}: {error.strerror or error}") from None
    return target


def json_for_script(text: str) -> str:
    """JSON text made safe inside ``<script type="application/json">``: no ``</script>`` can close it."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
