"""GitHub Actions: error annotations for memory failures and a step-summary table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..sizes import format_size
from .baseline import change_text

# GitHub shows at most 10 error annotations per step and drops the rest silently.
MAX_ANNOTATIONS = 10


@dataclass(frozen=True)
class MemoryFailure:
    """A test that failed on memory, with where it is defined and what the failure said."""

    nodeid: str
    path: str
    line: int
    message: str


def repository_path(path: str, rootdir: Path) -> str:
    """``path`` (relative to pytest's rootdir) as GitHub places annotations: relative to the
    checkout ($GITHUB_WORKSPACE), which differs when the suite lives in a subfolder of the repo."""
    workspace = os.environ.get("GITHUB_WORKSPACE", "")
    if not os.path.isabs(workspace):
        return path
    absolute = os.path.realpath(os.path.join(str(rootdir), path))
    relative = os.path.relpath(absolute, os.path.realpath(workspace))
    # A test outside the checkout keeps the path pytest gave: no annotation can point at it anyway.
    return path if relative.split(os.sep)[0] == os.pardir else relative.replace(os.sep, "/")


def escape_data(text: str) -> str:
    """Escape a workflow command's message as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (file, line, title)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(failures: Sequence[MemoryFailure]) -> list[str]:
    """``::error`` workflow commands, one per failure, at most MAX_ANNOTATIONS (then a notice)."""
    lines = []
    for failure in failures[:MAX_ANNOTATIONS]:
        title = f"Memory: {failure.nodeid}"
        lines.append(
            f"::error file={escape_property(failure.path)},line={failure.line},"
            f"title={escape_property(title)}::{escape_data(failure.message)}"
        )
    if len(failures) > MAX_ANNOTATIONS:
        lines.append(f"::warning title=pytest-memprof::{len(failures) - MAX_ANNOTATIONS} more memory "
                     f"failure(s) not annotated (GitHub shows {MAX_ANNOTATIONS} per step); see the job log")
    return lines


def _cell(text: str) -> str:
    # Node ids come from user code: keep them from breaking the table or injecting markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def step_summary(results: Sequence, failures: Sequence[MemoryFailure], top: int, compared: bool) -> str:
    """A markdown section: the top tests by peak, then the memory failures."""
    ranked = sorted(results, key=lambda result: -result.peak_bytes)[:top]
    lines = ["## Memory (pytest-memprof)", ""]
    header = "| test | peak | leaked | allocations |" + (" vs baseline |" if compared else "")
    lines += [header, "|---|---:|---:|---:|" + ("---:|" if compared else "")]
    for result in ranked:
        row = (f"| `{_cell(result.nodeid)}` | {format_size(result.peak_bytes)} | {format_size(result.leaked_bytes)} "
               f"| {result.allocations:,} |")
        if compared:
            row += f" {change_text(result.peak_bytes, result.baseline_peak_bytes)} |"
        lines.append(row)
    lines.append("")
    if failures:
        lines.append(f"### {len(failures)} test(s) failed on memory")
        for failure in failures:
            lines += ["", f"**`{_cell(failure.nodeid)}`** ({_cell(failure.path)}:{failure.line})", "",
                      "```", failure.message.replace("```", "'''"), "```"]
    else:
        lines.append(f"No memory failures in {len(results)} tracked test(s).")
    return "\n".join(lines) + "\n"


def active(setting: str) -> bool:
    """Whether to write GitHub output: ``on``, ``off``, or ``auto`` (when GITHUB_ACTIONS=true)."""
    if setting == "off":
        return False
    return setting == "on" or os.environ.get("GITHUB_ACTIONS") == "true"
