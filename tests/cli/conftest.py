"""Fixtures for the ``memprof`` command's tests: the real console script, run in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_env


def memprof_command() -> list[str]:
    """The installed ``memprof`` console script beside this interpreter, else ``python -m pytest_memprof``."""
    script = Path(sys.executable).parent / "memprof"
    if script.exists():
        return [str(script)]
    found = shutil.which("memprof")
    if found:
        return [found]
    return [sys.executable, "-m", "pytest_memprof"]


@pytest.fixture
def memprof(tmp_path):
    """Run ``memprof ARGS`` in tmp_path; returns the CompletedProcess (text, both streams captured)."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        env = kwargs.pop("env", None) or subprocess_env()
        return subprocess.run([*memprof_command(), *args], capture_output=True, text=True, env=env,
                              cwd=cwd or tmp_path, timeout=timeout, **kwargs)

    return run


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failed command: non-zero exit, one ``memprof: error:`` line naming the problem, no traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("memprof: error:"), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
