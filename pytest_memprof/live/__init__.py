"""Watching a running program's memory: the stream decoder, the streaming server and the textual view.

This module stays import-light: ``memprof run`` imports it for the exit mark before the program starts.
"""

from __future__ import annotations

# The runner writes this MARK just before it stops tracking, so a viewer learns the program's exit code
# from the stream itself ("one format, two sinks": nothing travels beside the capture bytes).
EXIT_MARK_ID = 0x65786974  # "exit" in ASCII
_EXIT_LABEL = r"exit (-?\d{1,10})"  # compiled by the viewer that reads it: re is not the runner's to import


def exit_mark_label(exit_code: int) -> str:
    """The label of the mark that records the program's exit code."""
    return f"exit {int(exit_code)}"


def parse_exit_mark(mark_id: int, label: str) -> int | None:
    """The exit code an exit mark records, or None for any other mark."""
    import re

    match = re.fullmatch(_EXIT_LABEL, label) if mark_id == EXIT_MARK_ID else None
    return int(match.group(1)) if match else None
