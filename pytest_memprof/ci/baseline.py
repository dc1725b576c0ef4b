"""Baselines: per-test figures saved from one run, compared with a later one.

A baseline is exactly the file given to ``--memprof-save-baseline`` by the run that wrote it;
we never pick "the last run" on our own. Comparing shows each test's change; with
``--memprof-fail-on-increase PCT`` a test fails if its peak grew by more than PCT *and* by more
than a noise floor in bytes (``--memprof-min-bytes``), so tiny tests do not flap.
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

from ..errors import UsageError
from .files import replace_atomically

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BaselineEntry:
    """One test's figures in a baseline."""

    peak_bytes: int
    leaked_bytes: int
    allocations: int


def _commit() -> str | None:
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def save(path: str, results: Sequence) -> None:
    """Write the tracked tests' figures as a versioned JSON baseline (atomically)."""
    data = {
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
            }
            for result in sorted(results, key=lambda result: result.nodeid)
        },
    }
    text = json.dumps(data, indent=2) + "\n"
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
    if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
        raise UsageError(f"--memprof-compare {path}: not a pytest-memprof baseline (no 'tests' table)")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UsageError(f"--memprof-compare {path}: baseline schema version {version!r} is not one this "
                         f"pytest-memprof reads (up to {SCHEMA_VERSION})")
    entries = {}
    for nodeid, figures in data["tests"].items():
        try:
            entries[nodeid] = BaselineEntry(int(figures["peak_bytes"]), int(figures.get("leaked_bytes", 0)),
                                            int(figures.get("allocations", 0)))
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"--memprof-compare {path}: malformed entry for {nodeid!r}") from None
    return entries


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
