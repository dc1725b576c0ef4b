"""Text for people: failure messages with the guilty stacks, the session summary, the CSV file."""

from __future__ import annotations

import csv
import os
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from .. import launcher
from ..ci.files import replace_atomically
from ..launcher import Launcher
from ..model import StackStat
from ..sizes import format_size
from ..terminal import printable
from .results import TestMemoryResult
from .verdict import Failure

_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep
_PYTEST = Launcher(launcher.PYTEST)


def _display_path(path: str, rootdir: Path | None) -> str:
    # Paths under the rootdir read best relative to it, as pytest shows them.
    if rootdir is not None and path.startswith(str(rootdir) + os.sep):
        return path[len(str(rootdir)) + 1:]
    return path


def is_runner_stack(stack: StackStat) -> bool:
    """True if no frame of the stack is the test's code: pytest's own work (launcher.py), or the stdlib's."""
    return stack.launcher or (bool(stack.frames) and all(
        _PYTEST.is_launcher_file(frame.file) or frame.file.startswith((_STDLIB, "<frozen ")) for frame in stack.frames))


def format_stacks(title: str, stacks: Sequence[StackStat], *, max_stacks: int, max_frames: int,
                  rootdir: Path | None) -> str:
    """A block listing the largest stacks, each with its allocating frame first."""
    lines = [title]
    # Stacks made only of the test runner's frames (pytest's own bookkeeping inside the window)
    # are noise next to the test's: left out, but counted.
    ours = [stack for stack in stacks if not is_runner_stack(stack)]
    runner = [stack for stack in stacks if is_runner_stack(stack)]
    stacks = ours
    shown = list(stacks)[:max_stacks]
    if not shown:
        lines.append("  (no allocation recorded)")
    for index, stack in enumerate(shown, 1):
        count = f"{stack.count:,} allocation{'s' if stack.count != 1 else ''}"
        lines.append(f"  #{index}  {format_size(stack.bytes)} in {count}")
        frames = stack.frames[::-1]
        if not frames:
            lines.append("      <no Python frame: allocated in native code or by the interpreter>")
        for frame in frames[:max_frames]:
            # Names and paths from the test's code reach a terminal: control characters show as escapes.
            lines.append(f"      {printable(frame.function)} at {printable(_display_path(frame.file, rootdir))}:"
                         f"{frame.line}")
        if len(frames) > max_frames:
            lines.append(f"      ... {len(frames) - max_frames} more frame(s)")
    if len(stacks) > len(shown):
        rest = sum(stack.bytes for stack in list(stacks)[len(shown):])
        lines.append(f"  ... and {len(stacks) - len(shown)} more stack(s) with {format_size(rest)}")
    if runner:
        lines.append(f"  ({len(runner)} stack(s) inside pytest itself, {format_size(sum(s.bytes for s in runner))}, "
                     "not shown)")
    return "\n".join(lines)


def failure_message(failures: Sequence[Failure], peak_stacks: Sequence[StackStat], leak_stacks: Sequence[StackStat],
                    *, show_leaks: bool, max_stacks: int, max_frames: int, rootdir: Path | None) -> str:
    """The whole text of a memory failure: what was measured, then the stacks responsible."""
    parts = ["\n".join(failure.text() for failure in failures)]
    if any(failure.about_peak for failure in failures):
        parts.append(format_stacks("Largest stacks at the peak:", peak_stacks, max_stacks=max_stacks,
                                   max_frames=max_frames, rootdir=rootdir))
    grown = [row for failure in failures for row in failure.grown]
    if grown:
        parts.append(format_grown(grown, max_frames=max_frames, rootdir=rootdir))
    if show_leaks:
        parts.append(format_stacks("Leaking stacks:", leak_stacks, max_stacks=max_stacks,
                                   max_frames=max_frames, rootdir=rootdir))
    return "\n\n".join(parts)


def format_grown(rows: Sequence, *, max_frames: int, rootdir: Path | None) -> str:
    """The locations that grew most since the baseline (``diff.DiffRow``), each with its stack."""
    lines = ["Locations that grew most since the baseline (at the peak):"]
    for index, row in enumerate(rows, 1):
        before = "new" if not row.in_base else format_size(row.base.peak_bytes)
        lines.append(f"  #{index}  +{format_size(row.peak_change)} ({before} -> {format_size(row.new.peak_bytes)})")
        frames = row.stack[::-1]
        for frame in frames[:max_frames]:
            lines.append(f"      {frame.function} at {_display_path(frame.file, rootdir)}:{frame.line}")
        if len(frames) > max_frames:
            lines.append(f"      ... {len(frames) - max_frames} more frame(s)")
    return "\n".join(lines)


def summary_lines(results: Sequence[TestMemoryResult], top: int | None, overhead_s: float,
                  compared: bool = False) -> list[str]:
    """The end-of-session table: the tests with the highest peak, then totals."""
    from ..ci.baseline import change_text

    ranked = sorted(results, key=lambda result: -result.peak_bytes)
    shown = ranked if top is None else ranked[:top]
    change_header = f"  {'vs base':>8}" if compared else ""
    lines = [f"{'peak':>10}{change_header}  {'leaked':>10}  {'allocations':>11}  {'gc':>4}  test"]
    for result in shown:
        flag = "  [MEMORY]" if result.memory_failed else ""
        change = f"  {change_text(result.peak_bytes, result.baseline_peak_bytes):>8}" if compared else ""
        lines.append(
            f"{format_size(result.peak_bytes):>10}{change}  {format_size(result.leaked_bytes):>10}  "
            f"{result.allocations:>11,}  {result.gc_collections:>4}  {result.nodeid}{flag}"
        )
    failed = sum(result.memory_failed for result in results)
    allocations = sum(result.allocations for result in results)
    allocated = sum(result.total_bytes for result in results)
    collections = sum(result.gc_collections for result in results)
    freed = sum(result.gc_freed_bytes for result in results)
    lines.append("")
    if compared:
        new = [result.nodeid for result in results if result.in_baseline is False]
        if new:
            lines.append(f"{len(new)} test(s) not in the baseline (not judged): " + ", ".join(new[:5])
                         + (" ..." if len(new) > 5 else ""))
    lines.append(
        f"{len(results)} test(s) tracked, {allocations:,} allocations ({format_size(allocated)}), "
        f"{failed} failed on memory; {collections} gc collection(s) during tests freed {format_size(freed)}; "
        f"memprof's own work took {overhead_s:.2f} s"
    )
    return lines


def write_csv(path: str, results: Sequence[TestMemoryResult], top: int | None) -> None:
    """The older pytest-memprof's CSV: header ``function,memory``, peak bytes per test, largest first."""
    ranked = sorted(results, key=lambda result: -result.peak_bytes)
    if top:
        ranked = ranked[:top]

    def write(partial: Path) -> None:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["function", "memory"])
            for result in ranked:
                writer.writerow([result.csv_name, result.peak_bytes])

    replace_atomically(path, write)
