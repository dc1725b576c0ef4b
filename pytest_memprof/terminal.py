"""What goes to a terminal: text from captures made harmless, and consoles as wide as the output allows.

Function names, file paths and thread names come from user code and from capture files. Printed
raw, an ESC or another control character in them is an instruction to the terminal (retitle it,
clear it, move the cursor); every terminal view passes such text through ``printable`` first, so
the characters show as visible escapes (``\\x1b``) instead. HTML reports escape for HTML instead.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported by _pipe_console() only: printable() is used where nothing prints with rich (the capture
    # reader, HTML reports), and rich is a few MiB of a report's memory.
    from rich.console import Console

# C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text
# (bidirectional overrides and isolates): none belongs in a name, all act on a terminal.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# Width of a console whose output is not a terminal and $COLUMNS is unset: lines are never wrapped.
UNWRAPPED_WIDTH = 100_000


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character shown as a visible escape (``\\x1b``), safe to print."""
    return _CONTROL.sub(_escape, text)


def terminal_width(stream: IO[str] | None = None) -> int | None:
    """How wide lines to ``stream`` (stdout) may be: ``$COLUMNS`` when set, the terminal's width on a
    terminal, else None (a pipe or a file: the whole line, never wrapped)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return None


@functools.cache
def _pipe_console() -> type[Console]:
    # A class made on first use, so that importing this module does not import rich (see above).
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich exits with status 1 when the reader has gone (`memprof stats x.bin | head`); the
            # CLI treats that as the end of the output, as `parse` does (cli.main's handler).
            self.quiet = True
            raise BrokenPipeError

    return PipeConsole


def console(stream: IO[str] | None = None, width: int | None = None, **options: Any) -> Console:
    """A rich console for ``stream`` (stdout): ``width`` wide, else terminal-wide on a terminal and
    unwrapped into a pipe or file."""
    width = width or terminal_width(stream)
    return _pipe_console()(file=stream, width=UNWRAPPED_WIDTH if width is None else width, **options)


def is_unwrapped(target: Console) -> bool:
    """Whether ``target`` writes whole lines (see ``console``), so views need not fit a width."""
    return target.width >= UNWRAPPED_WIDTH
