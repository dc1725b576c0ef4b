"""Baselines: per-test figures saved from one run, compared with a later one.

A baseline is the file given to ``--memprof-save-baseline`` by the run that wrote it or, with
``--memprof-fail-on-increase`` and no ``--memprof-compare FILE`` (pytest-memray's
``--fail-on-increase``), the figures pytest's cache holds from the previous run: each test's last
run that passed (save_cached). Comparing shows each test's change; with
``--memprof-fail-on-increase PCT`` a test fails if its peak grew by more than PCT *and* by more
than a noise floor in bytes (``--memprof-min-bytes``), so tiny tests do not flap. A baseline
also keeps each test's largest locations with their stacks (``location_summary``), so a test
that grew can say where (``grown_locations``).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..model import Frame, View

if TYPE_CHECKING:
    from ..capture import Capture
    from ..diff import DiffRow
from .files import replace_atomically

SCHEMA_VERSION = 1


# A test's location summary in a baseline stays under this many bytes of JSON (fewer frames, then
# fewer locations, until it does): a suite of 5,000 tests keeps a baseline of a few megabytes.
SUMMARY_LIMIT = 2048
SUMMARY_FRAMES = 8  # innermost frames kept per stack, before the limit asks for fewer


@dataclass(frozen=True)
class BaselineEntry:
    """One test's figures in a baseline, and its location summary (``location_summary``) if saved."""

    peak_bytes: int
    leaked_bytes: int
    allocations: int
    locations: dict | None = None


def _relative(path: str, rootdir: Path | None) -> str:
    if rootdir is not None and path.startswith(str(rootdir) + os.sep):
        return path[len(str(rootdir)) + 1:]
    return path


def location_summary(capture: Capture, top: int, rootdir: Path | None = None) -> dict:
    """A test's ``top`` largest locations at the peak and in its leaks, each with its largest stack,
    as compact JSON-ready data (under SUMMARY_LIMIT bytes): what a baseline keeps to tell a later
    run where the test grew (``grown_locations``). Paths are relative to ``rootdir``."""
    by_view = {}
    for view in (View.PEAK, View.LEAKS):
        locations: dict[Frame, list] = {}
        for stat in capture.stacks(view):
            frames = tuple(frame for frame in stat.frames if not frame.native)
            if stat.launcher or not frames:
                continue  # pytest's own work in the window: never the test's growth
            entry = locations.setdefault(frames[-1], [0, 0, frames, 0])
            entry[0] += stat.bytes
            entry[1] += stat.count
            if stat.bytes > entry[3]:
                entry[2], entry[3] = frames, stat.bytes
        by_view[view] = sorted(locations.values(), key=lambda entry: -entry[0])[:top]
    frames_kept, shown = SUMMARY_FRAMES, top
    while True:
        summary = _encode(by_view, shown, frames_kept, rootdir)
        if len(json.dumps(summary, separators=(",", ":"))) <= SUMMARY_LIMIT or (shown == 0):
            return summary
        if frames_kept > 1:
            frames_kept //= 2
        else:
            shown -= 1


def _encode(by_view: dict, shown: int, frames_kept: int, rootdir: Path | None) -> dict:
    files: dict[str, int] = {}
    frames: dict[tuple, int] = {}
    out: dict = {"files": [], "frames": []}
    for view, key in ((View.PEAK, "peak"), (View.LEAKS, "leaks")):
        rows = []
        for size, count, stack, _ in by_view[view][:shown]:
            ids = []
            for frame in stack[-frames_kept:]:
                file = _relative(frame.file, rootdir)
                file_id = files.setdefault(file, len(files))
                frame_key = (frame.function, file_id, frame.line, frame.first_line)
                ids.append(frames.setdefault(frame_key, len(frames)))
            rows.append([size, count, ids])
        out[key] = rows
    out["files"] = list(files)
    out["frames"] = [list(key) for key in frames]
    return out


def summary_rows(summary: dict) -> dict:
    """A location summary as the stack rows ``diff.diff_stack_rows`` compares; ValueError if malformed."""
    try:
        files = [str(file) for file in summary["files"]]
        frames = [Frame(str(function), files[file], int(line), first_line=int(first))
                  for function, file, line, first in summary["frames"]]
        return {view: [(tuple(frames[i] for i in ids), int(size), int(count)) for size, count, ids in summary[key]]
                for view, key in ((View.PEAK, "peak"), (View.LEAKS, "leaks"))}
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ValueError(f"malformed location summary ({error!r})") from None


def grown_locations(base_summary: dict, summary: dict, view: View = View.PEAK, limit: int = 3) -> list[DiffRow]:
    """The locations of ``summary`` that grew most in ``view`` since ``base_summary``, largest first."""
    from ..diff import diff_stack_rows

    rows = diff_stack_rows(summary_rows(base_summary), summary_rows(summary), view=view)
    return [row for row in rows if row.change(view) > 0][:limit]


def _commit() -> str | None:
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def data_of(results: Sequence) -> dict:
    """The baseline's JSON object for the tracked tests' results."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "machine": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
        },
        "tests": {
            result.nodeid: {
                "peak_bytes": result.peak_bytes,
                "leaked_bytes": result.leaked_bytes,
                "allocations": result.allocations,
                **({"locations": result.location_summary} if result.location_summary else {}),
            }
            for result in sorted(results, key=lambda result: result.nodeid)
        },
    }


def save(path: str, results: Sequence) -> None:
    """Write the tracked tests' figures as a versioned JSON baseline (atomically)."""
    text = json.dumps(data_of(results), indent=2) + "\n"
    replace_atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def load(path: str) -> dict[str, BaselineEntry]:
    """Read a baseline; a missing, unreadable or malformed file is a UsageError of one line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--memprof-compare {path}: no such baseline file") from None
    except OSError as error:
        raise UsageError(f"--memprof-compare {path}: cannot read it ({error.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise UsageError(f"--memprof-compare {path}: not a valid baseline (bad JSON: {error})") from None
    return entries_of(data, f"--memprof-compare {path}")


def entries_of(data: object, where: str) -> dict[str, BaselineEntry]:
    """The entries of a baseline's JSON object; a malformed one is a UsageError starting with ``where``."""
    if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
        raise UsageError(f"{where}: not a pytest-memprof baseline (no 'tests' table)")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UsageError(f"{where}: baseline schema version {version!r} is not one this "
                         f"pytest-memprof reads (up to {SCHEMA_VERSION})")
    entries = {}
    for nodeid, figures in data["tests"].items():
        try:
            locations = figures.get("locations")
            if locations is not None:
                summary_rows(locations)  # a malformed summary is said now, not when a test grows
            entries[nodeid] = BaselineEntry(int(figures["peak_bytes"]), int(figures.get("leaked_bytes", 0)),
                                            int(figures.get("allocations", 0)), locations)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UsageError(f"{where}: malformed entry for {nodeid!r}") from None
    return entries


# pytest's cache (``.pytest_cache``) holds the previous run's figures under this key: what
# ``--memprof-fail-on-increase`` compares with when no ``--memprof-compare FILE`` is given.
CACHE_KEY = "memprof/baseline"


def load_cached(cache) -> dict[str, BaselineEntry]:
    """The figures the previous run left in pytest's cache ({} on the first run); a damaged entry is a UsageError."""
    data = cache.get(CACHE_KEY, None)
    if data is None:
        return {}
    return entries_of(data, f"pytest's cache ({CACHE_KEY}; --cache-clear empties it)")


def save_cached(cache, results: Sequence) -> None:
    """Store this run's figures in pytest's cache for the next run, over the previous run's.

    A test that failed keeps the figures of its last run that passed, so a regression keeps
    failing until it is fixed (or the cache is cleared); a test not run this time keeps its own.
    """
    previous = cache.get(CACHE_KEY, None)
    tests = dict(previous["tests"]) if isinstance(previous, dict) and isinstance(previous.get("tests"), dict) else {}
    data = data_of([result for result in results if result.outcome == "passed" and not result.memory_failed])
    data["tests"] = {**tests, **data["tests"]}
    cache.set(CACHE_KEY, data)


def parse_percent(text: str) -> float:
    """``"10%"`` or ``"10"`` as 10.0; anything else is a UsageError."""
    raw = str(text).strip().rstrip("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"expected a percentage such as '10%', got {text!r}") from None
    if value < 0:
        raise UsageError(f"expected a percentage of 0 or more, got {text!r}")
    return value


def change_text(current: int, baseline: int | None) -> str:
    """``"+12.5%"`` style change against the baseline ("new" when the test was not in it)."""
    if baseline is None:
        return "new"
    if baseline == 0:
        return "+0%" if current == 0 else "+inf%"
    return f"{(current - baseline) / baseline * 100:+.1f}%"
